/**
 * Verify of format 2's own files (FORMAT.md §20.2), run by a verify of the whole repository after
 * the points are checked: every repository index file (its name is the SHA-256 of its content),
 * every pack file (its footer and table parse and match the table's checksum, its name is the
 * SHA-256 of its footer, every blob in it passes its check against its id — those the points'
 * check read already are not read again), and every pack the index names is there. Problems
 * carry no point (pointId null); the points a bad blob hurts are named by the per-point check
 * (verify.ts).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import type { ReadResult } from './chunkProtocol';
import { GC_LOCK_FILE, GC_PENDING_DIR, LOCKS_DIR, packPath } from './layout';
import { isStale, readLock } from './locks';
import { PACK_END_MAGIC, PACK_FOOTER_SIZE, readPackTail, TOC_ENTRY_SIZE, type PackEntry, type PackTail } from './pack';
import { quarantineKey, readPackQuarantine } from './packQuarantine';
import { listPackFiles, readIndexSnapshot, type IndexSnapshot, type PackFile } from './packScan';
import type { PackStore } from './packStore';
import type { VerifyProblem, VerifyReport } from './types';

/** Blob copies the points' check found intact: pack name → offsets. */
export type CheckedCopies = Map<string, Set<number>>;

/** A chunk's check (PackStore.check) that remembers the copy it found intact. */
export async function checkRecorded(store: PackStore, hex: string, length: number, checked: CheckedCopies): ReturnType<PackStore['check']> {
  const r = await store.check(hex, length);
  if (r.status === 'ok' && r.location) {
    let at = checked.get(r.location.pack);
    if (!at) checked.set(r.location.pack, (at = new Set()));
    at.add(r.location.offset);
  }
  return r;
}

/** Adds the checks of the repository's own files to a whole-repository verify report. */
export async function addPackChecks(report: VerifyReport, root: string, store: PackStore, checked: CheckedCopies, signal?: AbortSignal): Promise<VerifyReport> {
  const r = await verifyPacks(root, store, checked, signal);
  const problems = [...report.problems, ...r.problems];
  return { ...report, problems, ok: problems.length === 0, packsChecked: r.packsChecked, indexFilesChecked: r.indexFilesChecked };
}

export async function verifyPacks(
  root: string,
  store: PackStore,
  checked: CheckedCopies,
  signal?: AbortSignal,
): Promise<{ problems: VerifyProblem[]; packsChecked: number; indexFilesChecked: number }> {
  const problems: VerifyProblem[] = [];
  const snap = await readIndexSnapshot(root);
  for (const [file, why] of snap.problems) problems.push({ ...repoProblem('repo-index-corrupt', why), indexFile: file });
  const quarantine = await readPackQuarantine(root);
  // remote (FORMAT.md §24): every pack the index names, and every one the cache lists, is read
  // from the store's copy
  if (store.mirror) for (const name of snap.packs.keys()) await store.mirror.ensurePack(name);
  const disk = await listPackFiles(root);
  let packsChecked = 0;
  for (const p of disk) {
    if (signal?.aborted) throw new AppError('ABORTED', 'verify aborted', { cause: signal.reason });
    await store.mirror?.ensurePack(p.name);
    const found = await checkPack(store, p, snap.packs.get(p.name), checked.get(p.name), quarantine);
    if (found === 'gone') continue;
    packsChecked++;
    if (found) problems.push(found);
  }
  const onDisk = new Set(disk.map((p) => p.name));
  problems.push(...(await confirmMissing(root, [...snap.packs.keys()].filter((n) => !onDisk.has(n)), snap)));
  return { problems, packsChecked, indexFilesChecked: snap.files.length + snap.problems.size };
}

function repoProblem(kind: VerifyProblem['kind'], message: string): VerifyProblem {
  return { pointId: null, device: null, chunk: null, offset: null, kind, message };
}

/**
 * One pack file: undefined when whole; a problem naming the blobs that fail their check; 'gone'
 * when it went while being looked at (a collection removed it). A pack whose only bad blobs are
 * quarantined already is contained: nothing reads them any more, and the collection drops them.
 */
async function checkPack(
  store: PackStore,
  p: PackFile,
  indexed: PackEntry[] | undefined,
  okAt: ReadonlySet<number> | undefined,
  quarantine: ReadonlySet<string>,
): Promise<VerifyProblem | undefined | 'gone'> {
  let tail: PackTail | undefined;
  let why: string | undefined;
  try {
    tail = await readPackTail(p.file, `pack ${p.name}`);
    if (tail.name !== p.name) why = `pack ${p.name}: its footer does not match its name (the footer names ${tail.name})`;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'gone';
    if (!isAppError(err, 'REPO_CORRUPT')) throw new AppError('REPO_IO_ERROR', `verify: reading pack ${p.name} failed`, { cause: err });
    why = err.message;
  }
  // the blobs: as the index places them (what readers read), else as the pack's own table says
  const entries = indexed && indexed.length > 0 ? indexed : (tail?.entries ?? []);
  const bad = await failingBlobs(store, p, entries.filter((e) => !okAt?.has(e.offset)));
  const shape = await fileShape(p.file);
  if (!shape) return 'gone';
  const open = bad.filter((b) => !quarantine.has(quarantineKey(b.blob, p.name)));
  if (open.length === 0 && (why === undefined || bad.length > 0)) return undefined; // whole, or its damage contained
  // cut short: the index places blobs, or its table and footer, beyond the end of the file
  const end = entries.reduce((n, e) => Math.max(n, e.offset + e.storedLength), 0) + (indexed ? indexed.length * TOC_ENTRY_SIZE : 0) + PACK_FOOTER_SIZE;
  const truncated = !tail && (shape.size < end || !shape.endMagic);
  const named = indexed ? '' : ' (no repository index file names it)';
  const said =
    open.length > 0
      ? `; ${open.length} of its ${entries.length} blob(s) fail their check: ${open.map((b) => `${b.blob} (${b.message})`).join('; ')}`
      : `; its ${entries.length} blob(s) are intact (the damage is in its table or footer)`;
  const head = truncated ? `pack ${p.name} is truncated (${shape.size} bytes)` : (why ?? `pack ${p.name} holds corrupt blobs`);
  return { ...repoProblem(truncated ? 'pack-truncated' : 'pack-corrupt', `${head}${named}${said}`), pack: p.name, blobs: open.map((b) => b.blob) };
}

async function failingBlobs(store: PackStore, p: PackFile, entries: readonly PackEntry[]): Promise<Array<{ blob: string; message: string }>> {
  const bad: Array<{ blob: string; message: string; at: number }> = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < entries.length) {
      const at = next++;
      const e = entries[at] as PackEntry;
      const blob = e.id.toString('hex');
      const r = await store
        .workers()
        .run<ReadResult>({ op: 'checkAt', file: p.file, offset: e.offset, storedLength: e.storedLength, blob, length: e.plainLength }, `verify: checking blob ${blob} of pack ${p.name}`);
      if (r.status !== 'ok') bad.push({ blob, message: r.message ?? r.status, at });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, store.parallelism * 2) }, lane));
  return bad.sort((a, b) => a.at - b.at).map(({ blob, message }) => ({ blob, message }));
}

/** The file's size and whether it ends with the footer magic; undefined if it is gone. */
async function fileShape(file: string): Promise<{ size: number; endMagic: boolean } | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new AppError('REPO_IO_ERROR', `verify: opening ${file} failed`, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const end = Buffer.alloc(PACK_END_MAGIC.length);
    if (size >= end.length) await fh.read(end, 0, end.length, size - end.length);
    return { size, endMagic: end.equals(PACK_END_MAGIC) };
  } finally {
    await fh.close();
  }
}

/**
 * Packs the index named that were not found. A collection moves a pack into gc-pending/ before it
 * writes the index that no longer names it, so a pack found there while a collection runs is not
 * missing; one left there by a collection that died is (until the next collection puts it back).
 * A pack found nowhere is missing only if the index as it is now still names it.
 */
async function confirmMissing(root: string, names: readonly string[], snap: IndexSnapshot): Promise<VerifyProblem[]> {
  const out: VerifyProblem[] = [];
  if (names.length === 0) return out;
  const gc = await readLock(path.join(root, LOCKS_DIR, GC_LOCK_FILE));
  const collecting = gc?.info !== undefined && !isStale(gc.info);
  let now: IndexSnapshot | undefined;
  for (const name of names) {
    if (await exists(packPath(root, name))) continue;
    const count = snap.packs.get(name)?.length ?? 0;
    if (await exists(path.join(root, GC_PENDING_DIR, name))) {
      if (collecting) continue;
      out.push({ ...repoProblem('pack-missing', `pack ${name} (${count} blob(s)) is in ${GC_PENDING_DIR}/, where a garbage collection that did not finish left it: the next collection puts it back`), pack: name, blobCount: count });
      continue;
    }
    now ??= await readIndexSnapshot(root);
    const still = now.packs.get(name);
    if (!still) continue;
    out.push({ ...repoProblem('pack-missing', `pack ${name} is missing: the repository index places ${still.length} blob(s) in it`), pack: name, blobCount: still.length });
  }
  return out;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw new AppError('REPO_IO_ERROR', `verify: looking for ${file} failed`, { cause: err });
  }
}
