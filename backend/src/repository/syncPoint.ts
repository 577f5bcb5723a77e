/**
 * One restore point of `repo sync` (sync.ts): copied from the source repository into the
 * destination as the same point — id, creation time, VM, disks' facts, metadata and retention
 * lock — built on the VM's previous point in the destination, then read back from the
 * destination and compared, disk by disk, with the source's bytes (SHA-256 of each whole disk).
 */
import { AppError, isAppError } from '../errors';
import type { DiskIndex } from './diskIndex';
import type { PointReader } from './pointReader';
import type { Repository } from './repository';
import { copyDisk, diskSha256 } from './syncDisk';
import type { Manifest, ManifestDisk, ManifestDiskInput } from './types';

export interface CopiedPoint {
  /** The manifest the destination committed. */
  manifest: Manifest;
  /** Whether the destination's parent matched the source's (only changed chunks were written). */
  incremental: boolean;
  bytesRead: number;
  chunksWritten: number;
  /** SHA-256 of each whole disk, equal in source and destination (checked). */
  disks: Array<{ device: string; sha256: string }>;
}

export interface CopyPointOptions {
  /** Who reads (the read leases' holder). */
  holder: string;
  /** The retention lock to give the copy (null: none). */
  lockedUntil: string | null;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}

/**
 * Copies point `source` (open in the source repository `from`) into `to`, whose VM's previous
 * point is `toParent` (null: the VM has none there). When the source point's parent is that same
 * point, only the chunks that changed between the two (by the source's ids) are written and the
 * rest come from the destination's parent index; otherwise every chunk is. The destination
 * point appears whole at commit or not at all (a failure aborts its writer); checkCopy reads it
 * back.
 */
export async function copyPoint(from: Repository, source: PointReader, to: Repository, toParent: Manifest | null, opts: CopyPointOptions): Promise<CopiedPoint> {
  const m = source.manifest;
  const chained = toParent !== null && m.parentPointId === toParent.pointId && (await to.damageOf(toParent.pointId)) === null;
  // the source's parent, read under a lease of its own: its indexes say what changed
  const parentReader = chained ? await from.openPoint(toParent.pointId, { purpose: 'sync', holder: opts.holder }).catch(() => null) : null;
  let incremental = parentReader !== null;
  let bytesRead = 0;
  let chunksWritten = 0;
  const disks: Array<{ device: string; sha256: string }> = [];
  let manifest: Manifest;
  try {
    // the lock at the start too: a remote destination sets Object Lock retention on its packs at upload
    const w = await to.beginPoint({ vm: m.vm, pointId: m.pointId, createdAt: new Date(m.createdAt), parentPointId: toParent?.pointId ?? null, lockedUntil: opts.lockedUntil });
    try {
      for (const d of m.disks) {
        const index = await source.index(d.device);
        const base = parentReader && toParent ? await baseOf(to, toParent, parentReader, d.device, d.virtualSize, index.chunkSize) : null;
        if (!base) incremental = false;
        const dw = w.beginDisk({ device: d.device, virtualSize: d.virtualSize, ...(base ? { base: base.to } : {}) });
        const copied = await copyDisk(source, index, base?.from ?? null, dw, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
        }).catch((err: unknown) => {
          // the source's words (a corrupt chunk...) with the disk and the side they concern
          throw new AppError(isAppError(err) ? err.code : 'REPO_IO_ERROR', `point ${m.pointId}: copying disk ${d.device} from ${locationOf(from)} to ${locationOf(to)} failed`, { cause: err });
        });
        await dw.finish();
        bytesRead += copied.stats.bytesRead;
        chunksWritten += copied.stats.chunksWritten;
        disks.push({ device: d.device, sha256: copied.sha256 });
      }
      manifest = await w.commit({ disks: m.disks.map(diskInput), consistency: m.consistency, vmDefinition: m.vmDefinition, meta: m.meta, lockedUntil: opts.lockedUntil });
    } catch (err) {
      await w.abort();
      throw err;
    }
  } finally {
    await parentReader?.release();
  }
  return { manifest, incremental, bytesRead, chunksWritten, disks };
}

/**
 * The indexes an incremental copy of one disk starts from: the destination's parent index (the
 * writer's base) and the source's index of the same point (what the chunk ids are compared
 * with). Null — copy the disk whole — when either point lacks the disk, its size changed, or an
 * index cannot be read (a damaged parent is no base).
 */
async function baseOf(
  to: Repository,
  toParent: Manifest,
  fromParent: PointReader,
  device: string,
  virtualSize: number,
  chunkSize: number,
): Promise<{ to: DiskIndex; from: DiskIndex } | null> {
  const fromDisk = fromParent.manifest.disks.find((d) => d.device === device);
  const toDisk = toParent.disks.find((d) => d.device === device);
  if (!fromDisk || !toDisk || fromDisk.virtualSize !== virtualSize || toDisk.virtualSize !== virtualSize) return null;
  try {
    const [toIndex, fromIndex] = await Promise.all([to.readIndex(toParent.pointId, device), fromParent.index(device)]);
    if (toIndex.chunkSize !== to.chunkSize || fromIndex.chunkSize !== chunkSize) return null;
    return { to: toIndex, from: fromIndex };
  } catch {
    return null;
  }
}

/** Reads every disk of the committed copy back from the destination and compares its SHA-256
 *  with the source's: REPO_CORRUPT naming the disk (details.kind `sync-mismatch`) when they differ. */
export async function checkCopy(to: Repository, pointId: string, disks: ReadonlyArray<{ device: string; sha256: string }>, opts: Pick<CopyPointOptions, 'holder' | 'signal'>): Promise<void> {
  const reader = await to.openPoint(pointId, { purpose: 'sync', holder: opts.holder });
  try {
    for (const d of disks) {
      const got = await diskSha256(reader, d.device, opts.signal);
      if (got !== d.sha256) {
        throw new AppError('REPO_CORRUPT', `point ${pointId}: disk ${d.device} reads back from ${locationOf(to)} with sha256 ${got}, the source has ${d.sha256}`, {
          details: { kind: 'sync-mismatch', pointId, device: d.device, expected: d.sha256, actual: got },
        });
      }
    }
  } finally {
    await reader.release();
  }
}

/** Where a repository is, for messages and reports: its store (s3://…) or its directory. */
export function locationOf(r: Repository): string {
  return r.remote?.location ?? r.dir;
}

/** What the destination's writer needs of a source disk: everything the backup recorded, the
 *  chunk accounting and index fields being the destination's own. */
function diskInput(d: ManifestDisk): ManifestDiskInput {
  const input: Partial<ManifestDisk> = { ...d };
  for (const k of OWN_FIELDS) delete input[k];
  return input as ManifestDiskInput;
}

/** A manifest disk's fields its writer computes itself. */
const OWN_FIELDS = ['chunksNew', 'chunksReused', 'chunksZero', 'bytesStored', 'index', 'virtualSize'] as const satisfies ReadonlyArray<keyof ManifestDisk>;
