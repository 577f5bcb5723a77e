/**
 * `repo sync`: copies restore points from one repository into another (the off-site copy of the
 * 3-2-1 rule), whatever their backends, encryption or keys — it uses only the Repository API,
 * so a repository on object storage is opened differently and copied the same way. Each point
 * the destination lacks is copied whole under its own id (syncPoint.ts), oldest first per VM,
 * deduplicated by the destination, and read back and compared before it counts as copied.
 * Resumable: a point appears in the destination at its commit or not at all, so a run that was
 * killed left only staging, which the destination's next writer of that VM clears, and the next
 * run copies what is missing. Idempotent: a point the destination has is skipped.
 */
import * as path from 'path';
import { AppError, describeError, isAppError } from '../errors';
import { processActor } from './audit';
import type { Repository } from './repository';
import { checkCopy, copyPoint, locationOf } from './syncPoint';
import type { Manifest, PointSummary } from './types';

export interface SyncOptions {
  /** Only these VMs' points (each must have points in the source: INVALID_ARGUMENT otherwise). */
  vmKeys?: readonly string[];
  /** Only points created at or after this instant. */
  since?: Date;
  /** Who reads and writes, for the read leases (default `sync:<user>@<host>`). */
  holder?: string;
  signal?: AbortSignal;
  /** Called as a point's bytes are read from the source. */
  onProgress?: (p: SyncProgress) => void;
}

export interface SyncProgress {
  pointId: string;
  vmKey: string;
  /** Bytes of the point's disks read so far, of `total`. */
  done: number;
  total: number;
  /** Points handled before this one, of `points`. */
  index: number;
  points: number;
}

export interface SyncPointResult {
  pointId: string;
  vmKey: string;
  createdAt: string;
  /** copied: written, read back and found equal; skipped: the destination has it already;
   *  failed: see `code` and `reason` (nothing of it is in the destination, unless the read-back
   *  failed and the copy could not be removed: `reason` says so). */
  status: 'copied' | 'skipped' | 'failed';
  reason?: string;
  code?: string;
  /** copied: the destination's parent of the copy (the VM's previous point there). */
  parentPointId?: string | null;
  /** copied: only chunks changed since that parent were written. */
  incremental?: boolean;
  /** The copy's retention lock (copied: the source's, unless it had expired; skipped: after a
   *  longer lock of the source was applied to the destination's copy). */
  lockedUntil?: string | null;
  /** skipped: the destination's lock was extended to the source's later date. */
  lockExtended?: boolean;
  /** Plain bytes read from the source's stored chunks. */
  bytesRead: number;
  /** Compressed bytes the copy added to the destination (new packs or chunk files). */
  bytesStored: number;
  chunksWritten?: number;
  /** copied: SHA-256 of each whole disk, the same read back from the destination. */
  disks?: Array<{ device: string; sha256: string }>;
}

export interface SyncReport {
  from: string;
  to: string;
  startedAt: string;
  seconds: number;
  points: SyncPointResult[];
  copied: number;
  skipped: number;
  failed: number;
  bytesRead: number;
  bytesStored: number;
  /** No point failed. */
  ok: boolean;
}

/**
 * Copies the selected points of `from` that `to` lacks. Refuses (INVALID_ARGUMENT) the same
 * repository at both ends, a format-1 destination and a VM key without points in the source; a
 * point that cannot be copied (damaged in the source, the destination's VM lock held, a chunk
 * unreadable…) is reported failed and the others go on.
 */
export async function syncRepositories(from: Repository, to: Repository, opts: SyncOptions = {}): Promise<SyncReport> {
  checkPair(from, to);
  const started = Date.now();
  const holder = opts.holder ?? processActor('sync');
  const selected = await selectPoints(from, opts);
  const there = new Map<string, PointSummary>((await to.listPoints()).map((p) => [p.pointId, p]));
  const results: SyncPointResult[] = [];
  for (const [n, p] of selected.entries()) {
    if (opts.signal?.aborted) throw new AppError('ABORTED', 'repository sync aborted', { cause: opts.signal.reason });
    const r = await syncOne(from, to, p, there, { holder, n, of: selected.length, ...opts });
    results.push(r);
    if (r.status === 'copied') there.set(p.pointId, { ...p, lockedUntil: r.lockedUntil ?? null });
  }
  const sum = (k: 'bytesRead' | 'bytesStored'): number => results.reduce((t, r) => t + r[k], 0);
  const count = (s: SyncPointResult['status']): number => results.filter((r) => r.status === s).length;
  return {
    from: locationOf(from),
    to: locationOf(to),
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    points: results,
    copied: count('copied'),
    skipped: count('skipped'),
    failed: count('failed'),
    bytesRead: sum('bytesRead'),
    bytesStored: sum('bytesStored'),
    ok: count('failed') === 0,
  };
}

function checkPair(from: Repository, to: Repository): void {
  if (path.resolve(from.dir) === path.resolve(to.dir) || from.config.repositoryId === to.config.repositoryId) {
    throw new AppError('INVALID_ARGUMENT', `the source and the destination are the same repository (${locationOf(from)}, id ${from.config.repositoryId}): nothing to copy`);
  }
  if (to.remote?.mode === 'reader') {
    throw new AppError('INVALID_ARGUMENT', `the destination ${locationOf(to)} is open as a reader: open it as its writer to copy into it`);
  }
  if (to.formatVersion !== 2) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `the destination ${locationOf(to)} is a format-1 repository: repo sync copies into format 2 only (packs, the format an off-site or object-store copy has); ` +
        `upgrade it first with olvm-backup repo upgrade --repo ${to.dir}, or sync into a new format-2 repository`,
    );
  }
}

/** The source's points to consider: per VM (in key order), oldest first. */
async function selectPoints(from: Repository, opts: SyncOptions): Promise<PointSummary[]> {
  const all = await from.listPoints();
  const keys = opts.vmKeys && opts.vmKeys.length > 0 ? new Set(opts.vmKeys) : null;
  if (keys) {
    const known = new Set(all.map((p) => p.vm.key));
    const unknown = [...keys].filter((k) => !known.has(k));
    if (unknown.length > 0) {
      throw new AppError('INVALID_ARGUMENT', `no restore point of vm ${unknown.join(', ')} in ${locationOf(from)} (its vms: ${[...known].sort().join(', ') || 'none'})`, {
        details: { unknown, known: [...known].sort() },
      });
    }
  }
  const since = opts.since?.getTime();
  const picked = all.filter((p) => (keys === null || keys.has(p.vm.key)) && (since === undefined || Date.parse(p.createdAt) >= since));
  return picked.sort((a, b) => cmp(a.vm.key, b.vm.key) || cmp(a.createdAt, b.createdAt) || cmp(a.pointId, b.pointId));
}

async function syncOne(
  from: Repository,
  to: Repository,
  p: PointSummary,
  there: Map<string, PointSummary>,
  o: SyncOptions & { holder: string; n: number; of: number },
): Promise<SyncPointResult> {
  const base = { pointId: p.pointId, vmKey: p.vm.key, createdAt: p.createdAt, bytesRead: 0, bytesStored: 0 };
  const failed = (err: unknown): SyncPointResult => ({ ...base, status: 'failed', code: isAppError(err) ? err.code : 'REPO_IO_ERROR', reason: describeError(err) });
  const have = there.get(p.pointId);
  if (have) return skip(to, p, have, base).catch(failed);
  try {
    const mark = await from.damageOf(p.pointId);
    if (mark) {
      throw new AppError('REPO_CORRUPT', `point ${p.pointId} is marked damaged in ${locationOf(from)} since ${mark.markedAt} (${mark.devices ? `disks ${mark.devices.join(', ')}` : 'its manifest'}): not copied`);
    }
    const toParent = await previousPoint(to, there, p);
    const lockedUntil = p.lockedUntil !== null && Date.parse(p.lockedUntil) > Date.now() ? p.lockedUntil : null;
    const total = p.disks.reduce((t, d) => t + d.virtualSize, 0);
    let done = 0;
    const source = await from.openPoint(p.pointId, { purpose: 'sync', holder: o.holder });
    let copied: Awaited<ReturnType<typeof copyPoint>>;
    try {
      copied = await copyPoint(from, source, to, toParent, {
        holder: o.holder,
        lockedUntil,
        ...(o.signal ? { signal: o.signal } : {}),
        onBytes: (n) => {
          done += n;
          o.onProgress?.({ pointId: p.pointId, vmKey: p.vm.key, done, total, index: o.n, points: o.of });
        },
      });
    } finally {
      await source.release();
    }
    const result: SyncPointResult = {
      ...base,
      status: 'copied',
      parentPointId: copied.manifest.parentPointId,
      incremental: copied.incremental,
      lockedUntil: copied.manifest.lockedUntil,
      bytesRead: copied.bytesRead,
      bytesStored: copied.manifest.disks.reduce((t, d) => t + d.bytesStored, 0),
      chunksWritten: copied.chunksWritten,
      disks: copied.disks,
    };
    try {
      await checkCopy(to, p.pointId, copied.disks, { holder: o.holder, ...(o.signal ? { signal: o.signal } : {}) });
    } catch (err) {
      return { ...result, ...failed(err), reason: `${describeError(err)}; ${await dropBadCopy(to, p.pointId, o.holder)}` };
    }
    return result;
  } catch (err) {
    return failed(err);
  }
}

/**
 * A point the destination has: the same point if its VM, creation time and disks are the same
 * (REPO_SYNC_CONFLICT otherwise — another point under the same id is never overwritten). A
 * retention lock the source has lengthened since the copy is applied to the copy too.
 */
async function skip(to: Repository, p: PointSummary, have: PointSummary, base: Omit<SyncPointResult, 'status'>): Promise<SyncPointResult> {
  const same =
    have.vm.key === p.vm.key &&
    have.createdAt === p.createdAt &&
    have.disks.length === p.disks.length &&
    p.disks.every((d) => have.disks.some((h) => h.device === d.device && h.virtualSize === d.virtualSize));
  if (!same) {
    throw new AppError('REPO_SYNC_CONFLICT', `point ${p.pointId} in ${locationOf(to)} is not the source's point of that id (vm ${have.vm.key}, created ${have.createdAt}): left as it is`);
  }
  const later = p.lockedUntil !== null && Date.parse(p.lockedUntil) > Date.now() && (have.lockedUntil === null || Date.parse(p.lockedUntil) > Date.parse(have.lockedUntil));
  if (!later) return { ...base, status: 'skipped', reason: 'the destination has it', lockedUntil: have.lockedUntil };
  const m = await to.extendLock(p.pointId, p.lockedUntil as string, { reason: 'repo sync: the source point is locked longer' });
  return { ...base, status: 'skipped', reason: 'the destination has it', lockedUntil: m.lockedUntil, lockExtended: true };
}

/** The destination's point of the same VM just before `p` (by creation time, then id), if any. */
async function previousPoint(to: Repository, there: Map<string, PointSummary>, p: PointSummary): Promise<Manifest | null> {
  let best: PointSummary | null = null;
  for (const q of there.values()) {
    if (q.vm.key !== p.vm.key || (cmp(q.createdAt, p.createdAt) || cmp(q.pointId, p.pointId)) >= 0) continue;
    if (best === null || (cmp(q.createdAt, best.createdAt) || cmp(q.pointId, best.pointId)) > 0) best = q;
  }
  return best ? to.readManifest(best.pointId) : null;
}

/** A copy that did not read back equal must not stay to be skipped by the next run: removed
 *  unless its retention lock (or a reader) keeps it. Says what happened, for the report. */
async function dropBadCopy(to: Repository, pointId: string, holder: string): Promise<string> {
  try {
    await to.deletePoint(pointId, { reason: 'repo sync: the copy did not read back equal to the source', actor: holder });
    return 'the copy was deleted from the destination';
  } catch (err) {
    return `the copy could not be deleted from the destination (${describeError(err)}): check it with verify`;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
