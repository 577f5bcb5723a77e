/**
 * Garbage collection of format 2 (FORMAT.md §20), inside the protocol both formats share
 * (gc.ts): the marks are the chunk ids and the index tree node ids every point refers to; the
 * sweep judges whole pack files — a pack older than the cutoff that holds no live blob goes, one
 * whose live share is low is repacked first (gcRepack.ts) — and ends with one consolidated
 * repository index file that replaces every index file read at the start.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { fsyncDir, isErrno } from './atomicFile';
import { DIGEST_LENGTH } from './digest';
import { collectGarbage, DEFAULT_REPACK_BELOW, putBack, type GcContext, type GcOptions, type Marks, type SweepResult } from './gc';
import { repack, type RepackCandidate } from './gcRepack';
import { GC_PENDING_DIR, GC_STAGING_DIR, INDEX_DIR, indexFilePath, isHexDigest, packPath, TMP_DIR } from './layout';
import type { PackEntry } from './pack';
import { quarantineKey, readPackQuarantine, tidyQuarantine } from './packQuarantine';
import { listPackFiles, readIndexSnapshot, type IndexSnapshot } from './packScan';
import type { PackStore } from './packStore';
import { writeIndexFile } from './repoIndex';
import { parseRoot, treeLevels, type TreeRoot } from './treeIndex';
import type { GcReport } from './types';

/** @internal What the format-2 collection needs from the repository. */
export interface PackGcContext extends GcContext {
  store: PackStore;
}

/** Format 2's collection (Repository.gc). */
export async function collectPackGarbage(ctx: PackGcContext, opts: GcOptions = {}): Promise<GcReport> {
  const repackBelow = opts.repackBelow ?? DEFAULT_REPACK_BELOW;
  if (typeof repackBelow !== 'number' || !(repackBelow >= 0 && repackBelow <= 1)) {
    throw new AppError('INVALID_ARGUMENT', `gc repackBelow ${String(repackBelow)} is not a share between 0 and 1`);
  }
  const sweeper = new PackSweeper(ctx.root, ctx.store, repackBelow, opts.testHook);
  try {
    return await collectGarbage(ctx, opts, {
      pendingHome: (name) => (isHexDigest(name) ? packPath(ctx.root, name) : undefined),
      prepare: (dryRun) => sweeper.prepare(dryRun),
      markIndex: (buf, file, marks) => markTree(ctx.store, parseRoot(buf, file), marks, file),
      sweep: (s) => sweeper.sweep(s),
      cleanup: () => sweeper.cleanup(),
    });
  } finally {
    // this process's readers and writers see the packs and index files as they are now
    await ctx.store.index.refresh();
  }
}

/**
 * Marks a disk index's tree: every node id and every chunk id under it. Node contents are read
 * through the store (checked against their ids); a node whose subtree an earlier index already
 * walked whole is not read again (content-addressed: the same id has the same subtree), so
 * points that share most of their tree cost only what they changed. REPO_CORRUPT naming the
 * node when one cannot be read.
 */
async function markTree(store: PackStore, root: TreeRoot, marks: Marks, what: string): Promise<void> {
  const levels = treeLevels(root.count, root.fanout);
  if (levels.length === 0) return;
  const walked: string[] = [];
  let frontier = idsOf(root.top);
  for (let level = levels.length - 1; level >= 0; level--) {
    const below = level === 0 ? root.count : (levels[level - 1] as number);
    const next: Array<{ id: Buffer; j: number }> = [];
    await forEachLimited(frontier, 16, async ({ id, j }) => {
      const k = id.toString('latin1');
      marks.add(k);
      if (marks.walked.has(k)) return;
      const length = Math.min(root.fanout, below - j * root.fanout) * DIGEST_LENGTH;
      let content: Buffer;
      try {
        content = await store.readNode(id, length);
      } catch (err) {
        if (!isAppError(err, 'REPO_CORRUPT')) throw err;
        throw new AppError('REPO_CORRUPT', `${what}: index node ${id.toString('hex')}: ${err.message}`, { cause: err, details: { kind: 'index-corrupt', node: id.toString('hex') } });
      }
      walked.push(k);
      for (const child of idsOf(content)) {
        if (level === 0) marks.add(child.id.toString('latin1'));
        else next.push({ id: child.id, j: j * root.fanout + child.j });
      }
    });
    frontier = next;
  }
  // only now: a subtree counts as walked once all of it is marked
  for (const k of walked) marks.walked.add(k);
}

/** The non-zero ids of a list of 32-byte ids, with their positions in it (a zero id: a zero
 *  chunk, or a node of zero chunks, nothing stored). */
function idsOf(buf: Buffer): Array<{ id: Buffer; j: number }> {
  const out: Array<{ id: Buffer; j: number }> = [];
  for (let o = 0; o + DIGEST_LENGTH <= buf.length; o += DIGEST_LENGTH) {
    const id = buf.subarray(o, o + DIGEST_LENGTH);
    if (id.some((b) => b !== 0)) out.push({ id, j: o / DIGEST_LENGTH });
  }
  return out;
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** A pack the sweep removes: wholly unreferenced, or repacked. */
interface Going {
  name: string;
  file: string;
  size: number;
  /** Its unreferenced blobs. */
  dead: number;
  repack?: RepackCandidate & { liveBytes: number };
}

class PackSweeper {
  private snapshot: IndexSnapshot | undefined;
  private readonly staging: string;
  private dryRun = true;

  constructor(
    private readonly root: string,
    private readonly store: PackStore,
    private readonly repackBelow: number,
    private readonly hook: GcOptions['testHook'],
  ) {
    this.staging = path.join(root, TMP_DIR, GC_STAGING_DIR);
  }

  /** The repository index as it is at the start (the consolidated file replaces exactly these
   *  files); refused while one of them cannot be read, since the packs it names could not be
   *  told from garbage. */
  async prepare(dryRun: boolean): Promise<void> {
    this.dryRun = dryRun;
    if (!dryRun) await fs.rm(this.staging, { recursive: true, force: true }); // a crashed collection's
    const snap = await readIndexSnapshot(this.root);
    const [bad, why] = [...snap.problems][0] ?? [];
    if (bad !== undefined) {
      throw new AppError('REPO_CORRUPT', `gc refused: repository index file ${bad} cannot be read (${why}), so the packs it names cannot be told from garbage; verify reports it and rebuilds the index from the packs`, {
        details: { kind: 'repo-index-corrupt', indexFile: bad },
      });
    }
    this.snapshot = snap;
    await this.store.index.refresh(); // index nodes are read through it while marking
  }

  async sweep(s: { marks: Marks; leaseMarks: Marks; cutoffMs: number; dryRun: boolean }): Promise<SweepResult> {
    const snap = this.snapshot as IndexSnapshot;
    const out: Required<Omit<SweepResult, 'corruptBlobs' | 'packsStillLocked' | 'staleUploadsAborted'>> & Pick<SweepResult, 'corruptBlobs' | 'packsStillLocked' | 'staleUploadsAborted'> = {
      chunksScanned: 0,
      chunksRemoved: 0,
      bytesRemoved: 0,
      chunksKeptYoung: 0,
      chunksPutBack: 0,
      chunksKeptForLeases: 0,
      packsScanned: 0,
      packsKeptYoung: 0,
      packsRemoved: 0,
      packsRepacked: 0,
      packsPutBack: 0,
      packsWritten: 0,
      bytesRepacked: 0,
      indexFilesMerged: 0,
    };
    const quarantine = await readPackQuarantine(this.root);
    const usable = (pack: string, e: PackEntry): boolean => quarantine.size === 0 || !quarantine.has(quarantineKey(e.id.toString('hex'), pack));
    const disk = await listPackFiles(this.root);
    const onDisk = new Set(disk.map((p) => p.name));
    const going: Going[] = [];
    const stillLocked: string[] = [];
    if (this.store.mirror) {
      out.packsStillLocked = stillLocked;
      // parts of an upload cut mid-way (a crash, a network cut) are invisible to listings but
      // kept (and billed) by the store until aborted; older than the grace period, no writer
      // of ours can still be completing them
      if (!s.dryRun) out.staleUploadsAborted = await this.store.mirror.abortStaleUploads(new Date(s.cutoffMs));
    }
    for (const p of disk) {
      const st = await fs.stat(p.file).catch((err: unknown) => {
        if (isErrno(err, 'ENOENT')) return undefined;
        throw new AppError('REPO_IO_ERROR', `gc: stat ${p.file} failed`, { cause: err });
      });
      if (!st) continue;
      // a pack no index file names holds nothing a reader can find: wholly dead
      const entries = snap.packs.get(p.name) ?? [];
      out.packsScanned++;
      out.chunksScanned += entries.length;
      const live = entries.filter((e) => usable(p.name, e) && (s.marks.has(e.id.toString('latin1')) || s.leaseMarks.has(e.id.toString('latin1'))));
      if (st.mtimeMs >= s.cutoffMs) {
        // written or relied on by a writer since the cutoff: not looked at
        out.packsKeptYoung++;
        out.chunksKeptYoung += entries.length - live.length;
        continue;
      }
      out.chunksKeptForLeases += live.filter((e) => !s.marks.has(e.id.toString('latin1'))).length;
      const liveBytes = live.reduce((n, e) => n + e.storedLength, 0);
      const blobBytes = entries.reduce((n, e) => n + e.storedLength, 0);
      const dead = entries.length - live.length;
      const repackIt = live.length > 0 && liveBytes < this.repackBelow * blobBytes;
      if (live.length > 0 && !repackIt) continue;
      // remote: a pack whose Object Lock retention runs is neither removed nor rewritten
      if (this.store.mirror && (await this.store.mirror.retentionOf(p.name))) {
        stillLocked.push(p.name);
        continue;
      }
      if (!repackIt) going.push({ name: p.name, file: p.file, size: st.size, dead });
      else going.push({ name: p.name, file: p.file, size: st.size, dead, repack: { name: p.name, live, liveBytes } });
    }
    if (s.dryRun) {
      for (const g of going) {
        out.packsRemoved++;
        out.chunksRemoved += g.dead;
        out.bytesRemoved += g.size - (g.repack?.liveBytes ?? 0);
        if (g.repack) {
          out.packsRepacked++;
          out.bytesRepacked += g.repack.liveBytes;
        }
      }
      return out;
    }
    return this.remove(going, onDisk, usable, s.cutoffMs, out);
  }

  /** Repacks, moves the packs aside (putting back those a writer relied on meanwhile),
   *  consolidates the index, then unlinks what went aside. */
  private async remove(
    going: Going[],
    onDisk: ReadonlySet<string>,
    usable: (pack: string, e: PackEntry) => boolean,
    cutoffMs: number,
    out: Required<Omit<SweepResult, 'corruptBlobs' | 'packsStillLocked' | 'staleUploadsAborted'>> & Pick<SweepResult, 'corruptBlobs' | 'packsStillLocked' | 'staleUploadsAborted'>,
  ): Promise<SweepResult> {
    const snap = this.snapshot as IndexSnapshot;
    const candidates = going.flatMap((g) => (g.repack ? [g.repack] : []));
    const needed = new Set(candidates.flatMap((c) => c.live.map((e) => e.id.toString('latin1'))));
    const goingNames = new Set(going.map((g) => g.name));
    const elsewhere = new Map<string, Array<{ pack: string; entry: PackEntry }>>();
    for (const [pack, entries] of snap.packs) {
      if (goingNames.has(pack) || !onDisk.has(pack)) continue;
      for (const e of entries) {
        const k = e.id.toString('latin1');
        if (!needed.has(k) || !usable(pack, e)) continue;
        const list = elsewhere.get(k);
        if (list) list.push({ pack, entry: e });
        else elsewhere.set(k, [{ pack, entry: e }]);
      }
    }
    const rep = await repack({ root: this.root, store: this.store, stagingDir: this.staging, packSize: this.store.packSize, candidates, elsewhere });
    if (rep.corrupt.length > 0) out.corruptBlobs = rep.corrupt;
    // the new packs are findable before any old pack goes
    const newIndex = rep.written.length > 0 ? await writeIndexFile(this.root, { packs: rep.written.map((p) => ({ name: p.name, entries: p.entries })), supersedes: [] }) : undefined;
    if (newIndex !== undefined) await this.store.mirror?.indexWritten(newIndex);
    await this.hook?.('repacked', newIndex ?? '');

    const pending = path.join(this.root, GC_PENDING_DIR);
    await fs.mkdir(pending, { recursive: true });
    const aside: Going[] = [];
    for (const g of going) {
      if (g.repack && !rep.repacked.has(g.name)) continue; // a live blob is corrupt: left for verify
      const to = path.join(pending, g.name);
      try {
        await fs.rename(g.file, to);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw new AppError('REPO_IO_ERROR', `gc: moving pack ${g.name} aside failed`, { cause: err });
      }
      await this.hook?.('aside', g.name);
      // a writer that found a blob in it before the rename set its mtime (and relies on it)
      if ((await fs.stat(to)).mtimeMs >= cutoffMs) {
        await putBack(to, g.file, `pack ${g.name}`);
        out.packsPutBack++;
        out.chunksPutBack += g.dead;
        continue;
      }
      aside.push(g);
    }

    out.indexFilesMerged = await this.consolidate(new Set(aside.map((g) => g.name)), rep.written, newIndex);
    for (const g of aside) {
      await fs.rm(path.join(pending, g.name), { force: true });
      // remote: the store refuses a pack under retention (set since the judgement): still locked
      if ((await this.store.mirror?.deletePack(g.name))?.state === 'locked') out.packsStillLocked?.push(g.name);
      out.packsRemoved++;
      out.chunksRemoved += g.dead;
      out.bytesRemoved += g.size;
      if (g.repack) out.packsRepacked++;
    }
    await tidyQuarantine(this.root, new Set(aside.map((g) => g.name)));
    out.packsWritten = rep.written.length;
    out.bytesRepacked = rep.bytesCopied;
    out.bytesRemoved -= rep.written.reduce((n, p) => n + p.bytes, 0);
    return out;
  }

  /**
   * One index file for everything the files read at the start said, less the packs that went
   * aside, plus the new packs; it supersedes all of those files (and the new packs' own), which
   * are then removed. Index files writers added since the start are left as they are. Returns
   * the number of files replaced (0: nothing to do).
   */
  private async consolidate(gone: ReadonlySet<string>, written: ReadonlyArray<{ name: string; entries: PackEntry[] }>, newIndex: string | undefined): Promise<number> {
    const snap = this.snapshot as IndexSnapshot;
    if (gone.size === 0 && newIndex === undefined && snap.files.length <= 1) return 0;
    const packs = [...snap.packs].filter(([name]) => !gone.has(name)).map(([name, entries]) => ({ name, entries }));
    packs.push(...written.map((p) => ({ name: p.name, entries: p.entries })));
    // the files read and the ones they supersede (a damaged file a rebuilt one replaced must not
    // come back when that rebuilt file goes)
    const supersedes = [...new Set([...snap.files, ...snap.superseded, ...(newIndex ? [newIndex] : [])])];
    const consolidated = await writeIndexFile(this.root, { packs, supersedes });
    await this.store.mirror?.indexWritten(consolidated);
    await this.hook?.('consolidated', consolidated);
    for (const f of supersedes) if (f !== consolidated) await fs.rm(indexFilePath(this.root, f), { force: true });
    await fsyncDir(path.join(this.root, INDEX_DIR));
    await this.store.mirror?.indexesDropped(supersedes.filter((f) => f !== consolidated));
    return supersedes.length;
  }

  async cleanup(): Promise<void> {
    if (!this.dryRun) await fs.rm(this.staging, { recursive: true, force: true });
  }
}
