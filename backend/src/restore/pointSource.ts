import type { DiskIndex, LeasePurpose, Manifest, Repository } from '../repository';

/**
 * A restore point opened for reading: its manifest read once, each disk's index read once, its
 * chunks read and checked, all under a read lease (Repository.openPoint) that keeps the point
 * and its chunks from being deleted — by prune, a deletion or gc, in this process or another —
 * until it is released. Everything in restore/ that reads a point — a restore into the engine or
 * to a file, a download — takes one through openPoint below, so a restore reads the manifest
 * once however many steps use it.
 */
export interface PointSource {
  readonly manifest: Manifest;
  index(device: string): Promise<DiskIndex>;
  readChunk(digest: Buffer | string, length: number): Promise<Buffer>;
  /** Hands a chunk readChunk returned back for reuse, once its bytes are written (optional). */
  recycle?(data: Buffer): void;
  /** Idempotent; callers release in `finally`. */
  release(): Promise<void>;
}

/** Why a point is open (shown to whoever is refused a deletion meanwhile). */
export type ReadPurpose = LeasePurpose;

/** Opens a point for reading, leased (Repository.openPoint, seen as a PointSource).
 *  REPO_POINT_NOT_FOUND when it does not exist. */
export function openPoint(repository: Pick<Repository, 'openPoint'>, pointId: string, purpose: ReadPurpose, holder: string): Promise<PointSource> {
  return repository.openPoint(pointId, { purpose, holder });
}
