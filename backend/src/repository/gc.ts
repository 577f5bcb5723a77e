/**
 * Garbage collection, the protocol both formats share (FORMAT.md §14, §20): the gc lock, what a
 * crashed collection left in gc-pending/, the cutoff from the grace period and the live VM
 * locks, the marking of every index under points/, trash/ and tmp/ (deleted points kept for a
 * reader counted apart), the removal of trash entries and dead leases, and the audit record.
 * What is marked from one index file and what is swept is the format's (gcChunks.ts: chunk
 * files; gcPacks.ts: packs).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { appendAudit } from './audit';
import { fsyncDir, isErrno, readdirOrEmpty } from './atomicFile';
import { GC_LOCK_FILE, GC_PENDING_DIR, LOCKS_DIR, POINTS_DIR, TMP_DIR, TRASH_DIR } from './layout';
import { liveLeases, removeDeadLeases } from './leases';
import { acquireRepoLock, liveVmLocks } from './locks';
import { listPointIds } from './points';
import { purgeTrash } from './trash';
import type { GcReport } from './types';

export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;
/** Format 2: a pack whose live blobs fill less than this share of its blob bytes is rewritten. */
export const DEFAULT_REPACK_BELOW = 0.5;
/** File mtimes come from the kernel's coarse clock (a tick behind) and lock times from
 *  Date.now(): the cutoff is moved back by this much so that a file written or touched just
 *  after a lock was taken, or just after the collection started, never looks older than it. */
const CLOCK_SLACK_MS = 1_000;

/** @internal Moments of a format-2 collection a test can stop it at (to kill it there). */
export type GcPhase = 'repacked' | 'aside' | 'consolidated';

export interface GcOptions {
  /** Unreferenced data younger than this is kept (default 1 h). */
  graceMs?: number;
  dryRun?: boolean;
  actor?: string;
  /** Format 2: packs whose live share of blob bytes is below this (0..1, default 0.5) are
   *  rewritten without their dead blobs. 0 never rewrites; wholly dead packs go either way. */
  repackBelow?: number;
  /** @internal Test hook, awaited at each phase of a format-2 collection. */
  testHook?: (phase: GcPhase, detail: string) => Promise<void> | void;
}

/** @internal What GC needs from the repository. */
export interface GcContext {
  root: string;
  /** Calls `add` with every digest the open writers of this process refer to so far. */
  collectLiveWriters(add: (key: string) => void): void;
}

/** Ids (32 raw bytes as a latin1 string) of what must be kept. */
export class Marks {
  readonly set = new Set<string>();
  /** Format 2: index tree nodes whose whole subtree is marked (walked once). */
  readonly walked = new Set<string>();
  add = (key: string): void => {
    this.set.add(key);
  };
  has(key: string): boolean {
    return this.set.has(key);
  }
}

/** What a sweep reports (the fields of GcReport it owns). */
export type SweepResult = Pick<GcReport, 'chunksScanned' | 'chunksRemoved' | 'bytesRemoved' | 'chunksKeptYoung' | 'chunksPutBack' | 'chunksKeptForLeases'> &
  Partial<Pick<GcReport, 'packsScanned' | 'packsKeptYoung' | 'packsRemoved' | 'packsRepacked' | 'packsPutBack' | 'packsWritten' | 'bytesRepacked' | 'indexFilesMerged' | 'corruptBlobs' | 'packsStillLocked' | 'staleUploadsAborted'>>;

/** @internal What one format does inside the shared protocol. */
export interface GcFormat {
  /** Where a file a crashed collection left in gc-pending/ goes back to; undefined: not one of
   *  ours (removed). */
  pendingHome(name: string): string | undefined;
  /** After the cutoff is known, before marking (format 2 reads the repository index here). */
  prepare?(dryRun: boolean): Promise<void>;
  /** Marks what one index file of a point-shaped directory refers to. REPO_CORRUPT when the
   *  index (or, format 2, one of its tree nodes) cannot be read. */
  markIndex(buf: Buffer, file: string, marks: Marks): Promise<void>;
  sweep(s: { marks: Marks; leaseMarks: Marks; cutoffMs: number; dryRun: boolean }): Promise<SweepResult>;
  /** Runs last, also when the collection failed (format 2: its staging area). */
  cleanup?(): Promise<void>;
}

/**
 * Mark & sweep (FORMAT.md §14, §20). Safe against writers running in this or other processes:
 *
 * 1. Take `locks/gc.lock` (one collection at a time); put back what a crashed earlier
 *    collection left in gc-pending/.
 * 2. cutoff = min(now − grace, start of every live VM lock) − slack. Everything a running
 *    writer stores or reuses has an mtime after its lock's start (writers set the mtime of a
 *    chunk or pack they reuse), and every writer starting later writes after now − grace.
 * 3. Mark: the open writers of this process (in memory), then every index under points/ (one
 *    that cannot be read stops the collection), then trash/ (deleted points a running writer
 *    may still build on, or a reader still reads under its lease — those counted apart), then
 *    the finished indexes in every staging directory under tmp/ (best effort).
 * 4. Sweep (the format's): what is neither marked nor younger than the cutoff goes, through
 *    gc-pending/ so that a writer that relied on it meanwhile is seen and it is put back.
 * 5. Remove trash/ entries no running writer and no reader can still be using, and the lease
 *    files of readers that are gone; write the audit record.
 */
export async function collectGarbage(ctx: GcContext, opts: GcOptions, format: GcFormat): Promise<GcReport> {
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
    const leftoversRestored = dryRun ? 0 : await restoreLeftovers(root, format);

    const startMs = Date.now();
    const live = await liveVmLocks(path.join(root, LOCKS_DIR));
    const cutoffMs = Math.min(startMs - graceMs, ...live.map((l) => l.startedAtMs)) - CLOCK_SLACK_MS;
    await format.prepare?.(dryRun);

    const marks = new Marks();
    // Deleted points kept in trash/ only for a reader (FORMAT.md §15): what they refer to is
    // kept just the same, and counted apart. A lease taken later cannot open a deleted point.
    const leasedPoints = [...new Set((await liveLeases(root)).map((l) => l.pointId))].sort();
    const leased = new Set(leasedPoints);
    const leaseMarks = new Marks();
    const trashMarks = (id: string): Marks => (leased.has(id) ? leaseMarks : marks);
    ctx.collectLiveWriters(marks.add);
    let pointsMarked = 0;
    for (const id of await listPointIds(path.join(root, POINTS_DIR))) {
      // Deleted since the listing: it went to trash/ (marked below) or nothing can need it.
      const where = (await markDir(format, path.join(root, POINTS_DIR, id), marks, true)) ? 'points' : (await markDir(format, path.join(root, TRASH_DIR, id), trashMarks(id), false)) ? 'trash' : null;
      if (where) pointsMarked++;
    }
    for (const id of await listPointIds(path.join(root, TRASH_DIR))) await markDir(format, path.join(root, TRASH_DIR, id), trashMarks(id), false);
    for (const vm of await listNames(path.join(root, TMP_DIR))) {
      for (const id of await listPointIds(path.join(root, TMP_DIR, vm))) await markDir(format, path.join(root, TMP_DIR, vm, id), marks, false);
    }

    const sweep = await format.sweep({ marks, leaseMarks, cutoffMs, dryRun });
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
            ...(report.packsRemoved !== undefined ? { packsRemoved: report.packsRemoved, packsRepacked: report.packsRepacked, bytesRepacked: report.bytesRepacked } : {}),
            ...(report.chunksKeptForLeases > 0 ? { chunksKeptForLeases: report.chunksKeptForLeases, leasedPoints } : {}),
          },
        },
      ]);
    }
    return report;
  } finally {
    try {
      await format.cleanup?.();
    } finally {
      await lock.release();
    }
  }
}

export async function listNames(dir: string): Promise<string[]> {
  return (await readdirOrEmpty(dir)).filter((n) => !n.startsWith('.'));
}

/**
 * Marks what every index file (`*.idx`) in a point-shaped directory refers to; the manifest is
 * not needed, so a point whose manifest is damaged still keeps its data. False if the
 * directory is not there (any more). `strict` (points/): an index that cannot be read stops the
 * collection, since what it refers to cannot be told from garbage; elsewhere (trash/, tmp/) an
 * unreadable index is passed over, any other failure still stops it.
 */
async function markDir(format: GcFormat, dir: string, marks: Marks, strict: boolean): Promise<boolean> {
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
      if (isErrno(err, 'ENOENT')) return markDir(format, dir, marks, strict);
      throw new AppError('REPO_IO_ERROR', `gc: reading ${file} failed`, { cause: err });
    }
    try {
      await format.markIndex(buf, file, marks);
    } catch (err) {
      if (!isAppError(err, 'REPO_CORRUPT')) throw err;
      if (!strict) continue;
      throw new AppError('REPO_CORRUPT', `gc refused: index ${file} cannot be read, so what it refers to cannot be told from garbage (delete or repair that point first): ${err.message}`, {
        cause: err,
      });
    }
  }
  return true;
}

/** Links a file moved aside back to `final` (a copy already there wins), durably, then drops
 *  the aside name. */
export async function putBack(aside: string, final: string, what: string): Promise<void> {
  try {
    await fs.link(aside, final);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      await fs.mkdir(path.dirname(final), { recursive: true });
      await fs.link(aside, final).catch((e: unknown) => {
        if (!isErrno(e, 'EEXIST')) throw new AppError('REPO_IO_ERROR', `gc: putting ${what} back failed`, { cause: e });
      });
    } else if (!isErrno(err, 'EEXIST')) {
      throw new AppError('REPO_IO_ERROR', `gc: putting ${what} back failed`, { cause: err });
    }
  }
  await fsyncDir(path.dirname(final));
  await fs.unlink(aside);
}

async function restoreLeftovers(root: string, format: GcFormat): Promise<number> {
  let n = 0;
  for (const name of await listNames(path.join(root, GC_PENDING_DIR))) {
    const file = path.join(root, GC_PENDING_DIR, name);
    const home = format.pendingHome(name);
    if (home === undefined) {
      await fs.rm(file, { force: true });
      continue;
    }
    await putBack(file, home, name);
    n++;
  }
  return n;
}
