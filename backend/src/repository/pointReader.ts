/**
 * PointReader: one point opened for reading under a read lease (FORMAT.md §15), the way every
 * reader that must not lose the point under it (restore, download, verify) reads it.
 * The lease file exists before the manifest is read; from then on a deletion is refused, prune
 * leaves the point, and a deletion that slipped in between keeps the point in trash/ with its
 * chunks until the lease ends. The reader therefore reads indexes from trash/ too.
 */
import { AppError } from '../errors';
import type { ChunkReader } from './chunkReader';
import type { DiskIndex } from './diskIndex';
import type { HeldLease, LeaseKeeper } from './leases';
import { LEASE_PURPOSES, type LeasePurpose } from './model';
import { isPointId } from './pointId';
import { readChunk, readManifest, readPointIndex } from './points';
import type { RepoKey } from './repoKey';
import type { Manifest } from './types';

/** @internal What a PointReader needs from its repository. */
export interface PointReaderContext {
  root: string;
  store: ChunkReader;
  /** Opens sealed manifests (encrypted repository). */
  manifestKey: RepoKey | null;
  chunkSize: number;
  leases: LeaseKeeper;
}

export interface OpenPointOptions {
  purpose: LeasePurpose;
  /** Who reads, for the operator (`olvm-backup points` shows it); refusals name only the purpose. */
  holder: string;
}

/**
 * Takes the lease, then reads the manifest. REPO_POINT_NOT_FOUND if the point does not exist
 * (or was deleted before the lease was taken); REPO_PERMISSION_DENIED if this account may not
 * write the lease. The caller must call release() (in a finally).
 */
export async function openPoint(ctx: PointReaderContext, pointId: string, opts: OpenPointOptions): Promise<PointReader> {
  if (!opts || !(LEASE_PURPOSES as readonly string[]).includes(opts.purpose)) {
    throw new AppError('INVALID_ARGUMENT', `opening point ${pointId}: purpose must be one of ${LEASE_PURPOSES.join(', ')}`);
  }
  if (typeof opts.holder !== 'string' || opts.holder.trim() === '') throw new AppError('INVALID_ARGUMENT', `opening point ${pointId}: a holder is required`);
  // an id that is not one names no point: no lease file for it
  if (!isPointId(pointId)) throw new AppError('REPO_POINT_NOT_FOUND', `restore point ${String(pointId)} not found (not a point id)`);
  const lease = await ctx.leases.take(pointId, opts.purpose, opts.holder.trim());
  try {
    return new PointReader(ctx, lease, await readManifest(ctx.root, pointId, ctx.manifestKey), opts.purpose);
  } catch (err) {
    await ctx.leases.release(lease);
    throw err;
  }
}

export class PointReader {
  readonly pointId: string;
  readonly purpose: LeasePurpose;
  /** Read once, after the lease existed. */
  readonly manifest: Manifest;
  private readonly indexes = new Map<string, Promise<DiskIndex>>();
  private releasing: Promise<void> | undefined;

  /** @internal Made by openPoint. */
  constructor(
    private readonly ctx: PointReaderContext,
    private readonly lease: HeldLease,
    manifest: Manifest,
    purpose: LeasePurpose,
  ) {
    this.manifest = manifest;
    this.pointId = manifest.pointId;
    this.purpose = purpose;
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  /** The disk's index, read once (then cached), checked against the manifest. */
  index(device: string): Promise<DiskIndex> {
    if (this.releasing) return Promise.reject(this.releasedError());
    let p = this.indexes.get(device);
    if (!p) {
      p = readPointIndex(this.ctx.root, this.ctx.store, this.manifest, device, { trashToo: true });
      this.indexes.set(device, p);
      // a failed read is not remembered: the next call reads again
      p.catch(() => this.indexes.delete(device));
    }
    return p;
  }

  /** A chunk's plain content, checked against its digest (REPO_CORRUPT otherwise). */
  async readChunk(digest: Buffer | string, length: number): Promise<Buffer> {
    if (this.releasing) throw this.releasedError();
    return readChunk(this.ctx.store, this.ctx.chunkSize, digest, length);
  }

  /** Hands a chunk read() returned back for reuse, once the caller is done with its bytes. */
  recycle(data: Buffer): void {
    this.ctx.store.recycle?.(data);
  }

  /** Ends the lease. Idempotent; call it in a finally. */
  release(): Promise<void> {
    this.releasing ??= this.ctx.leases.release(this.lease);
    return this.releasing;
  }

  private releasedError(): AppError {
    return new AppError('INVALID_ARGUMENT', `point ${this.pointId} was released: open it again to read it`);
  }
}
