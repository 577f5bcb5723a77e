/**
 * The packs the in-place upgrade from format 1 writes (FORMAT.md §22): blobs already in their
 * stored form (a format-1 chunk file is one, §4 = §17 unencrypted; index tree nodes the upgrade
 * encodes) appended to packs in `tmp/.upgrade/packs/`, each sealed at the pack size, and one
 * repository index file written for every few sealed packs, so that a resumed upgrade skips
 * what an earlier run copied. The upgrade holds the repository alone, so there is no session,
 * no deduplication against other writers and no mtime protocol (§20): what the repository index
 * lists, and what this packer holds, is all there is.
 */
import { promises as fs } from 'fs';
import { crashPoint } from '../util/crashPoint';
import { indexFilePath } from './layout';
import { PackFile, publishPack, readPackTail, type BlobType, type SealedPack } from './pack';
import { listPackFiles, readIndexSnapshot } from './packScan';
import { writeIndexFile, type RepoIndex } from './repoIndex';

/** Sealed packs per index file: a crash costs at most this many packs of copying again. */
export const UPGRADE_INDEX_EVERY = 4;

export class UpgradePacker {
  /** Written with synchronous calls on the main thread: the CPU work (the checks) runs in the
   *  worker pool meanwhile, and a write of one chunk is short. */
  private file: PackFile | undefined;
  private sealed: SealedPack[] = [];
  /** Ids appended but not yet in an index file. */
  private readonly pending = new Set<string>();
  /** Every append, seal and index write, one after the other (one sequential pack at a time). */
  private chain: Promise<unknown> = Promise.resolve();
  packs = 0;
  bytes = 0;

  constructor(
    private readonly root: string,
    /** Packs are written here, then renamed into packs/. */
    private readonly tmpDir: string,
    private readonly packSize: number,
    private readonly index: RepoIndex,
    private readonly indexEvery = UPGRADE_INDEX_EVERY,
  ) {}

  /** Stored in the repository already, or appended by this packer. */
  has(id: Buffer): boolean {
    return this.index.has(id) || this.pending.has(id.toString('latin1'));
  }

  /** Appends a blob unless it is there already; true if appended. */
  add(id: Buffer, type: BlobType, stored: Buffer, plainLength: number): Promise<boolean> {
    return this.serial(async () => {
      if (this.has(id)) return false;
      this.file ??= PackFile.create(this.tmpDir);
      this.file.append(id, type, [stored], plainLength);
      this.pending.add(id.toString('latin1'));
      this.bytes += stored.length;
      if (this.file.size >= this.packSize) await this.sealOpen();
      if (this.sealed.length >= this.indexEvery) await this.writeIndex();
      return true;
    });
  }

  /** Seals the open pack and indexes every sealed one: after this, everything added is durable
   *  and found through the repository index. */
  flush(): Promise<void> {
    return this.serial(async () => {
      await this.sealOpen();
      await this.writeIndex();
    });
  }

  /** Drops the open pack (after a failure; sealed but unindexed packs are removed by the next
   *  run, removeOrphanPacks). */
  discard(): Promise<void> {
    return this.serial(() => {
      const f = this.file;
      this.file = undefined;
      f?.discard();
      return Promise.resolve();
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async sealOpen(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (!f) return;
    if (f.entries.length === 0) {
      f.discard();
      return;
    }
    const finished = f.finish();
    await publishPack(this.root, finished);
    this.sealed.push(finished);
    this.packs++;
  }

  private async writeIndex(): Promise<void> {
    if (this.sealed.length === 0) return;
    const packs = this.sealed;
    this.sealed = [];
    await writeIndexFile(this.root, { packs: packs.map((p) => ({ name: p.name, entries: p.entries })), supersedes: [] });
    await crashPoint('upgrade-index-written');
    for (const p of packs) {
      this.index.addPack(p.name, p.entries);
      for (const e of p.entries) this.pending.delete(e.id.toString('latin1'));
    }
  }
}

/**
 * Removes the packs no index file names: a run that crashed sealed them and died before it
 * indexed them (nothing else writes packs during an upgrade). Not when an index file could not
 * be read — its packs would look like orphans; their chunks are simply copied again.
 */
export async function removeOrphanPacks(root: string, index: RepoIndex): Promise<number> {
  if (index.problems.size > 0) return 0;
  const named = new Set<string>();
  for (const [, locs] of index.entries()) for (const l of locs) named.add(l.pack);
  let removed = 0;
  for (const p of await listPackFiles(root)) {
    if (named.has(p.name)) continue;
    await fs.rm(p.file, { force: true });
    removed++;
  }
  return removed;
}

/**
 * Replaces the index files by one that lists every pack and supersedes them all (FORMAT.md §18),
 * then deletes them: an upgraded repository opens with one file to read, not one per few packs.
 * An index file that cannot be read is superseded too (its chunks were copied again, see
 * removeOrphanPacks). Idempotent: a crash before the deletions leaves superseded files readers skip.
 */
export async function consolidateIndex(root: string): Promise<string[]> {
  const snap = await readIndexSnapshot(root);
  if (snap.files.length + snap.problems.size <= 1) return snap.files;
  const packs = new Map(snap.packs);
  if (snap.problems.size > 0) {
    // a damaged file may be the only one naming some packs (tree nodes of points converted by an
    // earlier run): those packs are taken from their own tables before the file is superseded
    for (const p of await listPackFiles(root)) {
      if (packs.has(p.name)) continue;
      const tail = await readPackTail(p.file, `pack ${p.name}`);
      packs.set(p.name, tail.entries);
    }
  }
  const names = [...new Set([...snap.files, ...snap.superseded, ...snap.problems.keys()])];
  const merged = await writeIndexFile(root, { packs: [...packs].map(([name, entries]) => ({ name, entries })), supersedes: names });
  for (const name of names) if (name !== merged) await fs.rm(indexFilePath(root, name), { force: true });
  return [merged];
}
