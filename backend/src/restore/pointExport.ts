/**
 * One disk of a restore point as the NBD server's ExportSource: guest bytes read straight from
 * the repository (any format, encrypted too: every chunk checked against its digest on the way),
 * zero chunks answered as holes without I/O, base:allocation from the point's index, recently
 * read chunks kept in a bounded cache and the next ones read ahead for a sequential reader. The
 * point is held under a read lease (purpose `export`) until close(), so no prune, deletion or gc
 * of any process removes what is being served. A damaged chunk fails the reads that touch it
 * (NBD EIO for that range, logged with the chunk once) and nothing else.
 */
import { AppError, describeError } from '../errors';
import { NBD_STATE_HOLE, NBD_STATE_ZERO, type ExportSource, type Extent, type ReadPiece } from '../nbd';
import { diskLabel, readDiskMeta, type DiskIndex, type ManifestDisk, type Repository } from '../repository';
import type { Logger } from '../util/log';
import { ChunkCache } from './chunkCache';
import { openPoint, type PointSource } from './pointSource';

/** Chunks read ahead of a sequential reader, as the HTTP download does. */
const READ_AHEAD = 8;
/** Chunk loads at once (decompression and decryption run in the repository's workers). */
const MAX_LOADS = 16;
const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Ends of recent reads: a read starting at one of them continues a sequential stream. */
const STREAMS = 16;

export interface PointExportOptions {
  repository: Pick<Repository, 'openPoint'>;
  pointId: string;
  /** The disk: its device id, the engine's disk id, or its alias. */
  disk: string;
  /** Who serves it, for the lease (`olvm-backup points` shows it). */
  holder: string;
  /** Why the point is read (the lease's purpose; default `export`). */
  purpose?: 'export' | 'browse';
  cacheBytes?: number;
  log?: Logger;
}

export class PointExport implements ExportSource {
  readonly size: number;
  readonly description: string;
  private readonly cache: ChunkCache;
  private readonly recentEnds: number[] = [];
  private readonly reported = new Set<number>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly point: PointSource,
    readonly disk: ManifestDisk,
    private readonly index: DiskIndex,
    private readonly log: Logger | undefined,
    cacheBytes: number,
  ) {
    this.size = index.virtualSize;
    this.description = `disk ${diskLabel(disk)} (${disk.device}) of restore point ${point.manifest.pointId} of vm ${point.manifest.vm.name}`;
    const budget = Math.max(cacheBytes, (READ_AHEAD + MAX_LOADS) * index.chunkSize);
    this.cache = new ChunkCache(
      budget,
      MAX_LOADS,
      (i) => this.loadChunk(i),
      (i) => index.chunkLength(i),
      (data) => point.recycle?.(data),
    );
  }

  /** Takes the lease, finds the disk and reads its index; REPO_POINT_NOT_FOUND, REPO_DISK_NOT_FOUND. */
  static async open(opts: PointExportOptions): Promise<PointExport> {
    const point = await openPoint(opts.repository, opts.pointId, opts.purpose ?? 'export', opts.holder);
    try {
      const disk = findDisk(point.manifest.disks, opts.disk);
      if (!disk) {
        const have = point.manifest.disks.map((d) => (diskLabel(d) === d.device ? d.device : `${d.device} (${diskLabel(d)})`)).join(', ');
        throw new AppError('REPO_DISK_NOT_FOUND', `point ${opts.pointId} has no disk '${opts.disk}' (it has: ${have})`);
      }
      const index = await point.index(disk.device);
      return new PointExport(point, disk, index, opts.log, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    } catch (err) {
      await point.release();
      throw err;
    }
  }

  get pointId(): string {
    return this.point.manifest.pointId;
  }

  get chunkSize(): number {
    return this.index.chunkSize;
  }

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    if (this.closing) throw new AppError('NBD_DISCONNECTED', `the export of point ${this.pointId} is closing`);
    const cs = this.index.chunkSize;
    const end = offset + length;
    const first = Math.floor(offset / cs);
    const last = Math.floor((end - 1) / cs);
    const pieces: Array<Promise<ReadPiece>> = [];
    for (let i = first; i <= last; i++) {
      const s = Math.max(offset, i * cs);
      const e = Math.min(end, i * cs + this.index.chunkLength(i));
      if (this.index.isZero(i)) {
        pieces.push(Promise.resolve({ offset: s, length: e - s, zero: true }));
        continue;
      }
      const whole = s === i * cs && e === i * cs + this.index.chunkLength(i);
      pieces.push(
        this.cache.acquire(i, whole).then(
          (held): ReadPiece => ({ offset: s, length: e - s, data: held.data.subarray(s - i * cs, e - i * cs), release: held.release }),
          (error: unknown): ReadPiece => ({ offset: s, length: e - s, error: error instanceof Error ? error : new Error(String(error)) }),
        ),
      );
    }
    this.readAhead(offset, end, last);
    return mergeZeroes(await Promise.all(pieces));
  }

  allocation(offset: number, length: number): Extent[] {
    const cs = this.index.chunkSize;
    const end = offset + length;
    const out: Extent[] = [];
    for (let i = Math.floor(offset / cs); i * cs < end; i++) {
      const s = Math.max(offset, i * cs);
      const e = Math.min(end, i * cs + this.index.chunkLength(i));
      const flags = this.index.isZero(i) ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
      const prev = out[out.length - 1];
      if (prev && prev.flags === flags) prev.length += e - s;
      else out.push({ offset: s, length: e - s, flags });
    }
    return out;
  }

  /** Waits for the chunk reads in flight, then ends the lease. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.cache.idle();
      await this.point.release();
    })();
    return this.closing;
  }

  /**
   * A read that starts where an earlier one ended continues a stream: the chunks after it are
   * loaded now, unless readers already keep enough loads busy (many requests in flight, as
   * nbdcopy sends, need no read-ahead).
   */
  private readAhead(offset: number, end: number, last: number): void {
    const at = this.recentEnds.indexOf(offset);
    if (at >= 0) this.recentEnds.splice(at, 1);
    this.recentEnds.push(end);
    if (this.recentEnds.length > STREAMS) this.recentEnds.shift();
    if (at < 0 || this.cache.demandRunning >= READ_AHEAD) return;
    for (let i = last + 1; i <= last + READ_AHEAD && i < this.index.count; i++) {
      if (this.index.isZero(i) || this.cache.has(i)) continue;
      this.cache.prefetch(i);
    }
  }

  private async loadChunk(i: number): Promise<Buffer> {
    try {
      return await this.point.readChunk(this.index.digest(i), this.index.chunkLength(i));
    } catch (err) {
      if (!this.reported.has(i)) {
        this.reported.add(i);
        this.log?.error(
          { pointId: this.pointId, device: this.disk.device, chunk: i, digest: this.index.digestHex(i), offset: i * this.index.chunkSize, err: describeError(err) },
          'chunk of an exported point cannot be read: reads of its range fail with EIO',
        );
      }
      throw err;
    }
  }
}

/** A disk by device id, engine disk id or alias (diskLabel). */
export function findDisk(disks: readonly ManifestDisk[], wanted: string): ManifestDisk | undefined {
  return disks.find((d) => d.device === wanted) ?? disks.find((d) => readDiskMeta(d).diskId === wanted || diskLabel(d) === wanted);
}

/** Adjacent zero pieces as one (fewer hole chunks on the wire). */
function mergeZeroes(pieces: ReadPiece[]): ReadPiece[] {
  const out: ReadPiece[] = [];
  for (const p of pieces) {
    const prev = out[out.length - 1];
    if (prev && 'zero' in prev && 'zero' in p) out[out.length - 1] = { offset: prev.offset, length: prev.length + p.length, zero: true };
    else out.push(p);
  }
  return out;
}
