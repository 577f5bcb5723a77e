/**
 * Verify of format 2's own files (FORMAT.md §20), run by a verify of the whole repository after
 * the points are checked: every repository index file (its name is the SHA-256 of its content),
 * every pack file (its footer and table parse, the footer's SHA-256 of the body and the name's
 * SHA-256 of the whole file match; when not, every blob in it is checked to name those that
 * fail), and every pack the index names is there. Problems carry no point (pointId null); the
 * points a bad blob hurts are named by the per-point check (verify.ts).
 */
import { createHash } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
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

/** Adds the checks of the repository's own files to a whole-repository verify report. */
export async function addPackChecks(report: VerifyReport, root: string, store: PackStore, signal?: AbortSignal): Promise<VerifyReport> {
  const r = await verifyPacks(root, store, signal);
  const problems = [...report.problems, ...r.problems];
  return { ...report, problems, ok: problems.length === 0, packsChecked: r.packsChecked, indexFilesChecked: r.indexFilesChecked };
}

export async function verifyPacks(root: string, store: PackStore, signal?: AbortSignal): Promise<{ problems: VerifyProblem[]; packsChecked: number; indexFilesChecked: number }> {
  const problems: VerifyProblem[] = [];
  const snap = await readIndexSnapshot(root);
  for (const [file, why] of snap.problems) problems.push({ ...repoProblem('repo-index-corrupt', why), indexFile: file });
  const quarantine = await readPackQuarantine(root);
  const disk = await listPackFiles(root);
  let packsChecked = 0;
  for (const p of disk) {
    if (signal?.aborted) throw new AppError('ABORTED', 'verify aborted', { cause: signal.reason });
    const found = await checkPack(store, p, snap.packs.get(p.name), quarantine);
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
async function checkPack(store: PackStore, p: PackFile, indexed: PackEntry[] | undefined, quarantine: ReadonlySet<string>): Promise<VerifyProblem | undefined | 'gone'> {
  const hashed = await hashPack(p.file);
  if (!hashed) return 'gone';
  let tail: PackTail | undefined;
  let why: string | undefined;
  try {
    tail = await readPackTail(p.file, `pack ${p.name}`);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'gone';
    if (!isAppError(err, 'REPO_CORRUPT')) throw new AppError('REPO_IO_ERROR', `verify: reading pack ${p.name} failed`, { cause: err });
    why = err.message;
  }
  if (tail && !tail.bodySha256.equals(hashed.body)) why = `pack ${p.name}: its content does not match the checksum in its footer`;
  else if (tail && hashed.whole !== p.name) why = `pack ${p.name}: its content does not match its name`;
  if (why === undefined) return undefined;

  const entries = indexed && indexed.length > 0 ? indexed : (tail?.entries ?? []);
  const bad = await failingBlobs(store, p, entries);
  if (!(await exists(p.file))) return 'gone';
  const open = bad.filter((b) => !quarantine.has(quarantineKey(b.blob, p.name)));
  if (bad.length > 0 && open.length === 0) return undefined;
  // cut short: the index places blobs, or its table and footer, beyond the end of the file
  const end = entries.reduce((n, e) => Math.max(n, e.offset + e.storedLength), 0) + (indexed ? indexed.length * TOC_ENTRY_SIZE : 0) + PACK_FOOTER_SIZE;
  const truncated = !tail && (hashed.size < end || !hashed.endMagic);
  const named = indexed ? '' : ' (no repository index file names it)';
  const blobs = open.map((b) => b.blob);
  const said =
    open.length > 0
      ? `; ${open.length} of its ${entries.length} blob(s) fail their check: ${open.map((b) => `${b.blob} (${b.message})`).join('; ')}`
      : `; its ${entries.length} blob(s) are intact (the damage is in its header, table or footer)`;
  return { ...repoProblem(truncated ? 'pack-truncated' : 'pack-corrupt', `${truncated ? `pack ${p.name} is truncated (${hashed.size} bytes)` : why}${named}${said}`), pack: p.name, blobs };
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

/** SHA-256 of the whole file and of everything before its footer, in one read; undefined if the
 *  file is gone. */
async function hashPack(file: string): Promise<{ whole: string; body: Buffer; size: number; endMagic: boolean } | undefined> {
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new AppError('REPO_IO_ERROR', `verify: stat ${file} failed`, { cause: err });
  }
  const whole = createHash('sha256');
  const body = createHash('sha256');
  const bodyEnd = Math.max(0, size - PACK_FOOTER_SIZE);
  let pos = 0;
  let last = Buffer.alloc(0);
  try {
    const stream: AsyncIterable<Buffer> | Buffer[] = size > 0 ? createReadStream(file, { highWaterMark: 1 << 20, end: size - 1 }) : [];
    for await (const chunk of stream) {
      whole.update(chunk);
      if (pos < bodyEnd) body.update(chunk.subarray(0, Math.min(chunk.length, bodyEnd - pos)));
      pos += chunk.length;
      last = Buffer.concat([last, chunk]).subarray(-PACK_END_MAGIC.length);
    }
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new AppError('REPO_IO_ERROR', `verify: reading ${file} failed`, { cause: err });
  }
  return { whole: whole.digest('hex'), body: body.digest(), size, endMagic: last.equals(PACK_END_MAGIC) };
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
