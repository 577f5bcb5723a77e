import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import type { ChunkStatus } from './chunkProtocol';
import type { DiskIndex } from './diskIndex';
import { MANIFEST_FILE } from './layout';
import type { Manifest, VerifyPointResult, VerifyProblem, VerifyReport } from './types';

/** What verify needs from the repository. */
export interface VerifySource {
  pointDirs(): Promise<string[]>;
  pointPath(pointId: string): string;
  readManifest(pointId: string): Promise<Manifest>;
  /** Index of one disk of an already-read manifest (checked against its sha256). */
  readIndex(manifest: Manifest, device: string): Promise<DiskIndex>;
  checkChunk(hex: string, length: number): Promise<{ status: ChunkStatus; message?: string }>;
  parallelism: number;
}

export interface VerifyOptions {
  pointId?: string;
  /** Every point of this VM (ignored with pointId). */
  vmKey?: string;
  /** Default true: mark damaged points, clear the marks of points found whole again, and move
   *  corrupt chunk files to quarantine/ (Repository.verify; FORMAT.md §11). */
  repair?: boolean;
  /** Recorded in the audit log for marks, clears and quarantines. */
  actor?: string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

interface BadChunk {
  status: 'missing' | 'corrupt';
  message: string;
}

/**
 * Pass 1 reads every selected manifest and index (reporting their damage) and collects the
 * distinct chunks they reference; pass 2 re-hashes each distinct chunk once in the worker pool;
 * pass 3, only if some are bad, names every (point, disk) that references a bad chunk with the
 * disk offset of its first occurrence.
 */
export async function verifyRepository(src: VerifySource, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const { signal } = opts;
  const problems: VerifyProblem[] = [];
  const pointIds = opts.pointId !== undefined ? [opts.pointId] : await src.pointDirs();
  const readable: Manifest[] = [];
  // Distinct chunks, keyed by the 32 raw digest bytes as a latin1 string (compact); value = length.
  const chunks = new Map<string, number>();

  for (const pointId of pointIds) {
    throwIfAborted(signal);
    const manifest = await loadManifest(src, pointId, opts.pointId !== undefined, problems);
    if (!manifest) continue;
    readable.push(manifest);
    for (const disk of manifest.disks) {
      const index = await loadIndex(src, manifest, disk.device, problems);
      if (!index) continue;
      for (let i = 0; i < index.count; i++) {
        if (index.isZero(i)) continue;
        const key = index.digest(i).toString('latin1');
        if (!chunks.has(key)) chunks.set(key, index.chunkLength(i));
      }
    }
  }

  const bad = new Map<string, BadChunk>();
  const total = chunks.size;
  let done = 0;
  let bytesChecked = 0;
  opts.onProgress?.(0, total);
  const entries = chunks.entries();
  const lane = async (): Promise<void> => {
    for (let next = entries.next(); !next.done; next = entries.next()) {
      if (signal?.aborted) return;
      const [key, length] = next.value;
      const hex = Buffer.from(key, 'latin1').toString('hex');
      const r = await src.checkChunk(hex, length);
      if (r.status !== 'ok') bad.set(key, { status: r.status, message: r.message ?? `chunk ${hex} is ${r.status}` });
      bytesChecked += length;
      done++;
      opts.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, src.parallelism * 4) }, lane));
  throwIfAborted(signal);

  if (bad.size > 0) {
    for (const manifest of readable) {
      for (const disk of manifest.disks) {
        const index = await src.readIndex(manifest, disk.device).catch(() => undefined);
        if (!index) continue;
        const reported = new Set<string>();
        for (let i = 0; i < index.count; i++) {
          if (index.isZero(i)) continue;
          const key = index.digest(i).toString('latin1');
          const b = bad.get(key);
          if (!b || reported.has(key)) continue;
          reported.add(key);
          problems.push({
            pointId: manifest.pointId,
            device: disk.device,
            chunk: index.digestHex(i),
            offset: i * index.chunkSize,
            kind: b.status === 'missing' ? 'chunk-missing' : 'chunk-corrupt',
            message: `point ${manifest.pointId} disk ${disk.device} at offset ${i * index.chunkSize}: ${b.message}`,
          });
        }
      }
    }
  }

  return {
    pointsChecked: pointIds.length,
    chunksChecked: done,
    bytesChecked,
    problems,
    ok: problems.length === 0,
    points: pointResults(pointIds, readable, problems),
    quarantined: [],
    marked: [],
    cleared: [],
  };
}

/** One verdict per checked point, from the problems found. */
function pointResults(pointIds: readonly string[], readable: readonly Manifest[], problems: readonly VerifyProblem[]): VerifyPointResult[] {
  const vmKeys = new Map(readable.map((m) => [m.pointId, m.vm.key]));
  const byPoint = new Map<string, VerifyProblem[]>();
  for (const p of problems) {
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

async function loadManifest(src: VerifySource, pointId: string, explicit: boolean, problems: VerifyProblem[]): Promise<Manifest | undefined> {
  try {
    return await src.readManifest(pointId);
  } catch (err) {
    if (isAppError(err, 'REPO_POINT_NOT_FOUND')) {
      // Asked for by name: it does not exist. Found as a directory: its manifest was lost.
      if (explicit && !(await exists(src.pointPath(pointId)))) throw err;
      problems.push(problem(pointId, null, 'manifest-corrupt', `point ${pointId}: ${MANIFEST_FILE} is missing`));
      return undefined;
    }
    if (isAppError(err, 'REPO_CORRUPT')) {
      problems.push(problem(pointId, null, 'manifest-corrupt', err.message));
      return undefined;
    }
    throw err;
  }
}

async function loadIndex(src: VerifySource, manifest: Manifest, device: string, problems: VerifyProblem[]): Promise<DiskIndex | undefined> {
  const pointId = manifest.pointId;
  try {
    return await src.readIndex(manifest, device);
  } catch (err) {
    if (isAppError(err, 'REPO_CORRUPT')) {
      const kind = err.details?.['kind'] === 'index-missing' ? 'index-missing' : 'index-corrupt';
      problems.push(problem(pointId, device, kind, err.message));
      return undefined;
    }
    throw err;
  }
}

function problem(pointId: string, device: string | null, kind: VerifyProblem['kind'], message: string): VerifyProblem {
  return { pointId, device, chunk: null, offset: null, kind, message };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(path.join(p));
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AppError('ABORTED', 'verify aborted', { cause: signal.reason });
}
