import { AppError, isAppError } from '../errors';
import type { ChunkReader } from './chunkReader';
import type { ChunkStatus, PutResult, ReadResult } from './chunkProtocol';
import { DiskIndex } from './diskIndex';
import { ChunkWorkerPool } from './chunkWorkers';
import { copyToOwn, ownsBuffer } from './workerShared';

/**
 * The chunk operations the rest of the repository uses, on top of the worker pool. All chunk
 * bytes go to the workers by transfer when the caller's Buffer owns its whole ArrayBuffer,
 * otherwise by one copy into a fresh one (never by cloning a larger backing store).
 */
export class ChunkStore implements ChunkReader {
  private pool: ChunkWorkerPool | undefined;

  constructor(
    private readonly chunksDir: string,
    private readonly zstdLevel: number,
    private readonly poolSize?: number,
  ) {}

  /** Started on first use, so that opening a repository to list points spawns no threads. */
  private workers(): ChunkWorkerPool {
    this.pool ??= new ChunkWorkerPool({ chunksDir: this.chunksDir, zstdLevel: this.zstdLevel }, this.poolSize);
    return this.pool;
  }

  get parallelism(): number {
    return this.workers().size;
  }

  /** `data` may be detached on return (transferred); the caller must not use it again. */
  async put(data: Buffer, tmpDir: string, what: string): Promise<PutResult> {
    const owned = ownsBuffer(data);
    const view = owned ? data : copyToOwn(data);
    try {
      return await this.workers().run<PutResult>({ op: 'put', data: view, tmpDir }, what, [view.buffer as ArrayBuffer]);
    } catch (err) {
      // Some Buffers (from native addons) refuse to be transferred: copy and try once more.
      if (owned && isAppError(err) && err.details?.['postFailed'] === true && view.byteLength === data.byteLength) {
        const copy = copyToOwn(data);
        return this.workers().run<PutResult>({ op: 'put', data: copy, tmpDir }, what, [copy.buffer as ArrayBuffer]);
      }
      throw err;
    }
  }

  /** Plain bytes of a stored chunk, fully checked; REPO_CORRUPT naming the chunk otherwise. */
  async read(hex: string, length: number): Promise<Buffer> {
    const r = await this.workers().run<ReadResult>({ op: 'read', digest: hex, length }, `reading chunk ${hex}`);
    if (r.status !== 'ok' || !r.data) {
      throw new AppError('REPO_CORRUPT', r.message ?? `chunk ${hex} is ${r.status}`, { details: { chunk: hex, status: r.status } });
    }
    return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  }

  async check(hex: string, length: number): Promise<{ status: ChunkStatus; message?: string }> {
    const r = await this.workers().run<ReadResult>({ op: 'check', digest: hex, length }, `checking chunk ${hex}`);
    return r.message === undefined ? { status: r.status } : { status: r.status, message: r.message };
  }

  decodeIndex(buf: Buffer, what: string): Promise<DiskIndex> {
    return Promise.resolve(DiskIndex.parse(buf, what));
  }

  /** Makes every chunk directory entry created (or relied on) so far durable. */
  async syncDirs(): Promise<void> {
    if (!this.pool) return;
    await this.pool.syncDirs();
  }

  /** Test hook: makes one worker die as if it crashed. */
  crashOneWorker(): Promise<unknown> {
    return this.workers().run({ op: 'crash' }, 'crash test');
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
