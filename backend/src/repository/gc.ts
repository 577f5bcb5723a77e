import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { appendAudit } from './audit';
import { fsyncDir, isErrno } from './atomicFile';
import { DiskIndex } from './diskIndex';
import { DIGEST_LENGTH } from './digest';
import { chunkPath, CHUNKS_DIR, GC_LOCK_FILE, GC_PENDING_DIR, isHexDigest, LOCKS_DIR, POINTS_DIR, TMP_DIR, TRASH_DIR } from './layout';
import { liveLeases, removeDeadLeases } from './leases';
import { acquireRepoLock, liveVmLocks } from './locks';
import { listPointIds } from './points';
import { purgeTrash } from './trash';
import type { GcReport } from './types';

export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;
/** Chunk mtimes come from the kernel's coarse clock (a tick behind) and lock times from
 *  Date.now(): the cutoff is moved back by this much so that a chunk written just after a lock
 *  was taken, or just after the collection started, never looks older than the cutoff. */
const CLOCK_SLACK_MS = 1_000;

export interface GcOptions {
  /** Unreferenced chunks younger than this are kept (default 1 h). */
  graceMs?: number;
  dryRun?: boolean;
  actor?: string;
}

/** @internal What GC needs from the repository. */
export interface GcContext {
  root: string;
  /** Calls `add` with every digest the open writers of this process refer to so far. */
  collectLiveWriters(add: (key: string) => void): void;
}

class Marks {
  readonly set = new Set<string>();
  add = (key: string): void => {
    this.set.add(key);
  };
  addIndex(index: DiskIndex): void {
    const raw = index.copyDigests();
    for (let off = 0; off < raw.length; off += DIGEST_LENGTH) {
      let zero = true;
      for (let i = off; i < off + DIGEST_LENGTH; i++) {
        if (raw[i] !== 0) {
          zero = false;
          break;
        }
      }
      if (!zero) this.set.add(raw.toString('latin1', off, off + DIGEST_LENGTH));
    }
  }
}

/**
 * Mark & sweep (FORMAT.md §13). Safe against writers running in this or other processes:
 *
 * 1. Take `locks/gc.lock` (one collection at a time); put back chunk files a crashed earlier
 *    collection left in gc-pending/.
 * 2. cutoff = min(now − grace, start of every live VM lock) − slack. Every chunk a running
 *    writer stores or reuses has an mtime after its lock's start (writers set the mtime of a
 *    chunk they reuse), and every writer starting later writes after now − grace.
 * 3. Mark: the open writers of this process (in memory), then every index under points/, then
 *    trash/ (deleted points a running writer may still build on, or a reader still reads under
 *    its lease — those counted apart), then the finished indexes in every staging directory
 *    under tmp/.
 * 4. Sweep each unreferenced chunk older than the cutoff: rename it into gc-pending/ (from then
 *    on a writer no longer finds it and stores the content again), re-read its mtime — if a
 *    writer reused it meanwhile, put it back —, else unlink it.
 * 5. Remove trash/ entries no running writer and no reader can still be using, and the lease
 *    files of readers that are gone.
 */
export async function collectGarbage(ctx: GcContext, opts: GcOptions = {}): Promise<GcReport> {
  const graceMs = opts.graceMs ?? DEFAULT_GC_GRACE_MS;
  if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
    throw new AppError('INVALID_ARGUMENT', `gc grace ${String(graceMs)} ms is not a duration >= 0`);
  }
  const dryRun = opts.dryRun === true;
  const root = ctx.root;
  const t0 = Date.now();
  await fs.mkdir(path.join(root, LOCKS_DIR), { recursive: true });
  const lock = await acquireRepoLock(path.join(root, LOCKS_DIR, GC_LOCK_FILE), 'gc');
  try {
    const leftoversRestored = dryRun ? 0 : await restoreLeftovers(root);

    const startMs = Date.now();
    const live = await liveVmLocks(path.join(root, LOCKS_DIR));
    const cutoffMs = Math.min(startMs - graceMs, ...live.map((l) => l.startedAtMs)) - CLOCK_SLACK_MS;

    const marks = new Marks();
    // Deleted points kept in trash/ only for a reader (FORMAT.md §15): their chunks are kept
    // just the same, and counted apart. A lease taken later cannot open a deleted point.
    const leasedPoints = [...new Set((await liveLeases(root)).map((l) => l.pointId))].sort();
    const leased = new Set(leasedPoints);
    const leaseMarks = new Marks();
    const trashMarks = (id: string): Marks => (leased.has(id) ? leaseMarks : marks);
    ctx.collectLiveWriters(marks.add);
    let pointsMarked = 0;
    for (const id of await listPointIds(path.join(root, POINTS_DIR))) {
      // Deleted since the listing: it went to trash/ (marked below) or nothing can need it.
      const where = (await markDir(path.join(root, POINTS_DIR, id), marks, true)) ? 'points' : (await markDir(path.join(root, TRASH_DIR, id), trashMarks(id), false)) ? 'trash' : null;
      if (where) pointsMarked++;
    }
    for (const id of await listPointIds(path.join(root, TRASH_DIR))) await markDir(path.join(root, TRASH_DIR, id), trashMarks(id), false);
    for (const vm of await listNames(path.join(root, TMP_DIR))) {
      for (const id of await listPointIds(path.join(root, TMP_DIR, vm))) await markDir(path.join(root, TMP_DIR, vm, id), marks, false);
    }

    const sweep = await sweepChunks(root, marks.set, leaseMarks.set, cutoffMs, dryRun);
    const trash = await purgeTrash(root, dryRun);
    const leasesRemoved = dryRun ? 0 : await removeDeadLeases(root);
    const report: GcReport = {
      dryRun,
      graceMs,
      cutoff: new Date(cutoffMs).toISOString(),
      liveWriters: live.length,
      pointsMarked,
      chunksReferenced: marks.set.size + [...leaseMarks.set].filter((k) => !marks.set.has(k)).length,
      ...sweep,
      leftoversRestored,
      trashPurged: trash.purged,
      trashKept: trash.kept,
      leasedPoints,
      leasesRemoved,
      seconds: (Date.now() - t0) / 1000,
    };
    if (!dryRun) {
      await appendAudit(root, [
        {
          actor: opts.actor ?? 'gc',
          action: 'gc',
          reason: null,
          details: {
            chunksRemoved: report.chunksRemoved,
            bytesRemoved: report.bytesRemoved,
            trashPurged: report.trashPurged,
            graceMs,
            ...(report.chunksKeptForLeases > 0 ? { chunksKeptForLeases: report.chunksKeptForLeases, leasedPoints } : {}),
          },
        },
      ]);
    }
    return report;
  } finally {
    await lock.release();
  }
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((n) => !n.startsWith('.'));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw new AppError('REPO_IO_ERROR', `gc: listing ${dir} failed`, { cause: err });
  }
}

/**
 * Marks the chunks of every index file (`*.idx`) in a point-shaped directory; the manifest is
 * not needed, so a point whose manifest is damaged still keeps its chunks. False if the
 * directory is not there (any more). `strict` (points/): an index that cannot be parsed stops
 * the collection, since the chunks it names cannot be told from garbage.
 */
async function markDir(dir: string, marks: Marks, strict: boolean): Promise<boolean> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw new AppError('REPO_IO_ERROR', `gc: listing ${dir} failed`, { cause: err });
  }
  for (const name of names) {
    if (name.startsWith('.') || !name.endsWith('.idx')) continue;
    const file = path.join(dir, name);
    let buf: Buffer;
    try {
      buf = await fs.readFile(file);
    } catch (err) {
      // Moved to trash/ meanwhile (then the fresh listing fails) or removed: list again.
      if (isErrno(err, 'ENOENT')) return markDir(dir, marks, strict);
      throw new AppError('REPO_IO_ERROR', `gc: reading ${file} failed`, { cause: err });
    }
    try {
      marks.addIndex(DiskIndex.parse(buf, file));
    } catch (err) {
      if (!strict || !isAppError(err, 'REPO_CORRUPT')) continue;
      throw new AppError('REPO_CORRUPT', `gc refused: index ${file} cannot be read, so the chunks it names cannot be told from garbage (delete or repair that point first)`, {
        cause: err,
      });
    }
  }
  return true;
}

async function sweepChunks(
  root: string,
  marked: ReadonlySet<string>,
  leaseMarked: ReadonlySet<string>,
  cutoffMs: number,
  dryRun: boolean,
): Promise<Pick<GcReport, 'chunksScanned' | 'chunksRemoved' | 'bytesRemoved' | 'chunksKeptYoung' | 'chunksPutBack' | 'chunksKeptForLeases'>> {
  const out = { chunksScanned: 0, chunksRemoved: 0, bytesRemoved: 0, chunksKeptYoung: 0, chunksPutBack: 0, chunksKeptForLeases: 0 };
  const chunksDir = path.join(root, CHUNKS_DIR);
  const pending = path.join(root, GC_PENDING_DIR);
  if (!dryRun) await fs.mkdir(pending, { recursive: true });
  for (const a of await listNames(chunksDir)) {
    if (!/^[0-9a-f]{2}$/.test(a)) continue;
    for (const b of await listNames(path.join(chunksDir, a))) {
      if (!/^[0-9a-f]{2}$/.test(b)) continue;
      const dir = path.join(chunksDir, a, b);
      for (const hex of await listNames(dir)) {
        if (!isHexDigest(hex) || !hex.startsWith(a + b)) continue;
        out.chunksScanned++;
        const key = Buffer.from(hex, 'hex').toString('latin1');
        if (marked.has(key)) continue;
        if (leaseMarked.has(key)) {
          out.chunksKeptForLeases++;
          continue;
        }
        const file = path.join(dir, hex);
        const st = await fs.stat(file).catch((err: unknown) => {
          if (isErrno(err, 'ENOENT')) return undefined;
          throw new AppError('REPO_IO_ERROR', `gc: stat ${file} failed`, { cause: err });
        });
        if (!st) continue;
        if (st.mtimeMs >= cutoffMs) {
          out.chunksKeptYoung++;
          continue;
        }
        if (dryRun) {
          out.chunksRemoved++;
          out.bytesRemoved += st.size;
          continue;
        }
        const aside = path.join(pending, hex);
        try {
          await fs.rename(file, aside);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue;
          throw new AppError('REPO_IO_ERROR', `gc: moving chunk ${hex} aside failed`, { cause: err });
        }
        // A writer that found the chunk before the rename set its mtime (and will use it): put it back.
        const moved = await fs.stat(aside);
        if (moved.mtimeMs >= cutoffMs) {
          await putBack(root, aside, hex);
          out.chunksPutBack++;
          continue;
        }
        await fs.unlink(aside);
        out.chunksRemoved++;
        out.bytesRemoved += moved.size;
      }
    }
  }
  return out;
}

/** Links a chunk moved aside back into chunks/ (a fresh copy stored meanwhile wins), durably,
 *  then drops the aside name. */
async function putBack(root: string, aside: string, hex: string): Promise<void> {
  const final = chunkPath(root, hex);
  try {
    await fs.link(aside, final);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      await fs.mkdir(path.dirname(final), { recursive: true });
      await fs.link(aside, final).catch((e: unknown) => {
        if (!isErrno(e, 'EEXIST')) throw e;
      });
    } else if (!isErrno(err, 'EEXIST')) {
      throw new AppError('REPO_IO_ERROR', `gc: putting chunk ${hex} back failed`, { cause: err });
    }
  }
  await fsyncDir(path.dirname(final));
  await fs.unlink(aside);
}

async function restoreLeftovers(root: string): Promise<number> {
  let n = 0;
  for (const name of await listNames(path.join(root, GC_PENDING_DIR))) {
    const file = path.join(root, GC_PENDING_DIR, name);
    if (!isHexDigest(name)) {
      await fs.rm(file, { force: true });
      continue;
    }
    await putBack(root, file, name);
    n++;
  }
  return n;
}
