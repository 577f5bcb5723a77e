/**
 * Verification (FORMAT.md §10): every chunk the selected points reference re-read and re-hashed
 * once, indexes and manifests checked, one verdict per point. Read-only; the repairs that follow
 * (quarantine, damage marks) are verifyRepairs.ts.
 */
import { AppError, isAppError } from '../errors';
import type { ChunkStatus } from './chunkProtocol';
import type { DiskIndex } from './diskIndex';
import { MANIFEST_FILE } from './layout';
import type { Manifest, VerifyPointResult, VerifyProblem, VerifyReport } from './types';

/** What verify needs from the repository. */
export interface VerifySource {
  /** The points to check, by id (complete or not). */
  pointIds(): Promise<string[]>;
  /** Whether `points/<id>` exists: one without a readable manifest is damage, none a deletion. */
  pointExists(pointId: string): Promise<boolean>;
  /** The point under a read lease (FORMAT.md §15); fails as Repository.readManifest does. */
  open(pointId: string): Promise<VerifiedPoint>;
  /** Format 2 also says where the copy it checked last is (`location.pack`). */
  checkChunk(hex: string, length: number): Promise<{ status: ChunkStatus; message?: string; location?: { pack: string } }>;
  parallelism: number;
}

/** A point held for verification (a PointReader). */
export interface VerifiedPoint {
  readonly manifest: Manifest;
  /** The disk's index, checked against the manifest (REPO_CORRUPT otherwise). */
  index(device: string): Promise<DiskIndex>;
  release(): Promise<void>;
}

export interface VerifyOptions {
  pointId?: string;
  /** Every point of this VM (ignored with pointId). */
  vmKey?: string;
  /** Default true: mark damaged points, clear the marks of points found whole again, and move
   *  corrupt chunk files to quarantine/ (Repository.verify; FORMAT.md §11). */
  repair?: boolean;
  /** Recorded in the audit log for marks, clears and quarantines, and as the leases' holder. */
  actor?: string;
  /** `done` of `total` distinct chunks; `total` grows as each batch of points is opened. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

interface BadChunk {
  status: 'missing' | 'corrupt';
  message: string;
  /** Format 2: the pack of the copy that failed. */
  pack?: string;
}

/** Points held under a lease at once: bounds the lease files (and their renewals) of a verify
 *  of the whole repository, while every point is leased from its manifest to its last chunk. */
const BATCH_POINTS = 32;

/**
 * Points are verified in batches, each point under a read lease from before its manifest is
 * read until its last chunk is checked, so that no prune or gc removes what is being verified
 * (a point deleted before its turn is skipped, not reported). Per batch: pass 1 reads the
 * manifests and indexes (reporting their damage) and collects the chunks no earlier batch
 * checked; pass 2 re-hashes each of them once in the worker pool; pass 3, only if some chunk is
 * bad, names every (point, disk) of the batch that references a bad chunk with the disk offset
 * of its first occurrence, from the indexes pass 1 read (a batch's indexes are held until its
 * leases end, so a batch is at most BATCH_POINTS points' indexes in memory).
 */
export async function verifyRepository(src: VerifySource, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const { signal } = opts;
  const explicit = opts.pointId !== undefined;
  const problems: VerifyProblem[] = [];
  const ids = explicit ? [opts.pointId as string] : await src.pointIds();
  const checkedIds: string[] = [];
  const readable: Manifest[] = [];
  // Every distinct chunk checked so far, keyed by its 32 raw digest bytes as a latin1 string
  // (compact): null when intact.
  const seen = new Map<string, BadChunk | null>();
  const progress = { done: 0, total: 0, bytes: 0, bad: 0 };
  opts.onProgress?.(0, 0);

  for (let b = 0; b < ids.length; b += BATCH_POINTS) {
    throwIfAborted(signal);
    const open: VerifiedPoint[] = [];
    const indexed: IndexedDisk[] = [];
    try {
      const fresh = new Map<string, number>();
      for (const pointId of ids.slice(b, b + BATCH_POINTS)) {
        const point = await openForVerify(src, pointId, explicit, problems);
        if (point === 'deleted') continue;
        checkedIds.push(pointId);
        if (!point) continue;
        open.push(point);
        readable.push(point.manifest);
        for (const disk of point.manifest.disks) {
          const index = await loadIndex(point, disk.device, problems);
          if (!index) continue;
          indexed.push({ pointId, device: disk.device, index });
          for (let i = 0; i < index.count; i++) {
            if (index.isZero(i)) continue;
            const key = index.digest(i).toString('latin1');
            if (!seen.has(key) && !fresh.has(key)) fresh.set(key, index.chunkLength(i));
          }
        }
      }
      await checkChunks(src, fresh, seen, progress, opts);
      if (progress.bad > 0) reportBadChunks(indexed, seen, problems);
    } finally {
      await Promise.allSettled(open.map((p) => p.release()));
    }
  }

  return {
    pointsChecked: checkedIds.length,
    chunksChecked: progress.done,
    bytesChecked: progress.bytes,
    problems,
    ok: problems.length === 0,
    points: pointResults(checkedIds, readable, problems),
    quarantined: [],
    marked: [],
    cleared: [],
  };
}

async function checkChunks(
  src: VerifySource,
  fresh: Map<string, number>,
  seen: Map<string, BadChunk | null>,
  progress: { done: number; total: number; bytes: number; bad: number },
  opts: VerifyOptions,
): Promise<void> {
  progress.total += fresh.size;
  opts.onProgress?.(progress.done, progress.total);
  const entries = fresh.entries();
  const lane = async (): Promise<void> => {
    for (let next = entries.next(); !next.done; next = entries.next()) {
      if (opts.signal?.aborted) return;
      const [key, length] = next.value;
      const hex = Buffer.from(key, 'latin1').toString('hex');
      const r = await src.checkChunk(hex, length);
      if (r.status === 'ok') seen.set(key, null);
      else {
        seen.set(key, { status: r.status, message: r.message ?? `chunk ${hex} is ${r.status}`, ...(r.location ? { pack: r.location.pack } : {}) });
        progress.bad++;
      }
      progress.bytes += length;
      progress.done++;
      opts.onProgress?.(progress.done, progress.total);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, src.parallelism * 4) }, lane));
  throwIfAborted(opts.signal);
}

/** A disk of a point of the batch whose index pass 1 read whole. */
interface IndexedDisk {
  pointId: string;
  device: string;
  index: DiskIndex;
}

/** Each bad chunk once per (point, disk) that references it, at its first offset. */
function reportBadChunks(indexed: readonly IndexedDisk[], seen: ReadonlyMap<string, BadChunk | null>, problems: VerifyProblem[]): void {
  for (const { pointId, device, index } of indexed) {
    const reported = new Set<string>();
    for (let i = 0; i < index.count; i++) {
      if (index.isZero(i)) continue;
      const key = index.digest(i).toString('latin1');
      const b = seen.get(key);
      if (!b || reported.has(key)) continue;
      reported.add(key);
      problems.push({
        pointId,
        device,
        chunk: index.digestHex(i),
        offset: i * index.chunkSize,
        kind: b.status === 'missing' ? 'chunk-missing' : 'chunk-corrupt',
        message: `point ${pointId} disk ${device} at offset ${i * index.chunkSize}: ${b.message}`,
        ...(b.pack ? { pack: b.pack } : {}),
      });
    }
  }
}

/** One verdict per checked point, from the problems found. */
function pointResults(pointIds: readonly string[], readable: readonly Manifest[], problems: readonly VerifyProblem[]): VerifyPointResult[] {
  const vmKeys = new Map(readable.map((m) => [m.pointId, m.vm.key]));
  const byPoint = new Map<string, VerifyProblem[]>();
  for (const p of problems) {
    if (p.pointId === null) continue; // the repository's own files (format 2 packs, index files)
    const list = byPoint.get(p.pointId);
    if (list) list.push(p);
    else byPoint.set(p.pointId, [p]);
  }
  return pointIds.map((pointId) => {
    const list = byPoint.get(pointId) ?? [];
    const whole = list.some((p) => p.device === null);
    const devices = whole ? null : [...new Set(list.map((p) => p.device as string))].sort();
    return {
      pointId,
      vmKey: vmKeys.get(pointId) ?? null,
      status: list.length === 0 ? 'ok' : 'damaged',
      damagedDevices: list.length === 0 ? [] : devices,
      problems: list.length,
    };
  });
}

/** The point under its lease; undefined when its manifest is damaged (reported); `deleted`
 *  when it went since the listing. */
async function openForVerify(src: VerifySource, pointId: string, explicit: boolean, problems: VerifyProblem[]): Promise<VerifiedPoint | undefined | 'deleted'> {
  try {
    return await src.open(pointId);
  } catch (err) {
    if (isAppError(err, 'REPO_POINT_NOT_FOUND')) {
      // Its directory without a manifest: the manifest was lost. No directory: deleted (by a
      // prune, say) before its lease was taken, or, asked for by name, it does not exist.
      if (await src.pointExists(pointId)) {
        problems.push(problem(pointId, null, 'manifest-corrupt', `point ${pointId}: ${MANIFEST_FILE} is missing`));
        return undefined;
      }
      if (explicit) throw err;
      return 'deleted';
    }
    if (isAppError(err, 'REPO_CORRUPT')) {
      problems.push(problem(pointId, null, 'manifest-corrupt', err.message));
      return undefined;
    }
    throw err;
  }
}

async function loadIndex(point: VerifiedPoint, device: string, problems: VerifyProblem[]): Promise<DiskIndex | undefined> {
  const pointId = point.manifest.pointId;
  try {
    return await point.index(device);
  } catch (err) {
    if (isAppError(err, 'REPO_CORRUPT')) {
      const kind = err.details?.['kind'] === 'index-missing' ? 'index-missing' : 'index-corrupt';
      // format 2: a tree node that cannot be read, and the pack of its copy
      const node = err.details?.['node'];
      const pack = err.details?.['pack'];
      problems.push({ ...problem(pointId, device, kind, err.message), ...(typeof node === 'string' ? { node } : {}), ...(typeof pack === 'string' ? { pack } : {}) });
      return undefined;
    }
    throw err;
  }
}

function problem(pointId: string, device: string | null, kind: VerifyProblem['kind'], message: string): VerifyProblem {
  return { pointId, device, chunk: null, offset: null, kind, message };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AppError('ABORTED', 'verify aborted', { cause: signal.reason });
}
