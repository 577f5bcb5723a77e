import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { crashPoint } from '../util/crashPoint';
import { writeFileAtomic } from './atomicFile';
import type { ChunkSink } from './chunkSink';
import { DIGEST_LENGTH, sha256Hex, ZERO_DIGEST } from './digest';
import { chunkCountFor, DiskIndex } from './diskIndex';

export interface DiskStats {
  chunksNew: number;
  chunksReused: number;
  chunksZero: number;
  bytesStored: number;
}

/** What the image's chunk i currently is; the stats are the counts of these. */
const enum Kind {
  Zero = 0,
  New = 1,
  Reused = 2,
}

/** @internal What a DiskWriter needs from its point. */
export interface DiskWriterContext {
  sink: ChunkSink;
  /** Staging directory of the point (index files go here). */
  stagingDir: string;
  chunkSize: number;
  /** Non-undefined once the point is committed or aborted: the reason puts are refused. */
  closedReason(): string | undefined;
}

/**
 * Builds one disk's index in a point. Index entries are written by chunk number when each put
 * completes, so puts may complete in any order; a later put (or putZero) of the same chunk
 * supersedes an earlier one still in flight. Stats always describe the image as it stands:
 * chunksNew + chunksReused + chunksZero === number of chunks.
 */
export class DiskWriter {
  readonly device: string;
  readonly virtualSize: number;
  readonly chunkSize: number;
  readonly count: number;
  readonly indexFile: string;
  private readonly statsLive: DiskStats = { chunksNew: 0, chunksReused: 0, chunksZero: 0, bytesStored: 0 };
  private readonly entries: Buffer;
  private readonly kinds: Uint8Array;
  /** Format 2: one byte per index tree leaf, set when a chunk under it changed. */
  private readonly dirty: Uint8Array | undefined;
  private readonly baseTree: Buffer[] | undefined;
  /** Chunk number → token of its latest put still in flight. */
  private readonly latest = new Map<number, number>();
  private nextToken = 1;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private failure: unknown;
  private finishing: Promise<void> | undefined;
  private result: { file: string; sha256: string; chunkCount: number } | undefined;
  /** Format 2, once finished: the index tree's node ids, level by level (a locked point of a
   *  remote repository extends the retention of the packs holding them, FORMAT.md §24). */
  private treeNodes: Buffer[] | undefined;

  /** @internal Created by PointWriter.beginDisk. */
  constructor(
    private readonly ctx: DiskWriterContext,
    params: { device: string; virtualSize: number; indexFile: string; base?: DiskIndex },
  ) {
    this.device = params.device;
    this.virtualSize = params.virtualSize;
    this.chunkSize = ctx.chunkSize;
    this.indexFile = params.indexFile;
    this.count = chunkCountFor(params.virtualSize, ctx.chunkSize);
    this.kinds = new Uint8Array(this.count);
    const base = params.base;
    const fanout = ctx.sink.fanout;
    this.dirty = fanout ? new Uint8Array(Math.ceil(this.count / fanout)) : undefined;
    this.baseTree = base?.tree;
    if (base) {
      this.entries = base.copyDigests();
      for (let i = 0; i < this.count; i++) {
        if (base.isZero(i)) this.statsLive.chunksZero++;
        else {
          this.kinds[i] = Kind.Reused;
          this.statsLive.chunksReused++;
        }
      }
    } else {
      this.entries = Buffer.alloc(this.count * DIGEST_LENGTH);
      this.statsLive.chunksZero = this.count;
    }
  }

  get stats(): Readonly<DiskStats> {
    return this.statsLive;
  }

  /** Index file name, sha256 and chunk count, once finish() has written it. */
  get indexInfo(): { file: string; sha256: string; chunkCount: number } | undefined {
    return this.result;
  }

  chunkLength(i: number): number {
    return Math.min(this.chunkSize, this.virtualSize - i * this.chunkSize);
  }

  /** Stores chunk i (all zeros → a zero entry, nothing stored). `data` may be transferred to a
   *  worker: the caller must not touch it afterwards. Resolves when the chunk is durable. */
  /**
   * Stores chunk i. Resolves, when the worker handed the memory back, with a Buffer over it
   * that the caller may fill again (the next read of a copy loop); `data` itself must not be
   * used after the call.
   */
  async putChunk(i: number, data: Buffer): Promise<Buffer | undefined> {
    this.checkOpen();
    this.checkIndex(i);
    if (!Buffer.isBuffer(data) && !((data as unknown) instanceof Uint8Array)) {
      throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: chunk ${i} data is not a buffer`);
    }
    const want = this.chunkLength(i);
    if (data.length !== want) {
      throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: chunk ${i} has ${data.length} bytes, expected ${want}`);
    }
    const token = this.nextToken++;
    this.latest.set(i, token);
    this.inFlight++;
    try {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, want);
      const r = await this.ctx.sink.put(buf, `storing chunk ${i} of disk ${this.device}`);
      const recycled = r.returned ? Buffer.from(r.returned.buffer, r.returned.byteOffset, r.returned.byteLength) : undefined;
      if (!r.zero) this.statsLive.bytesStored += r.bytes;
      if (this.latest.get(i) !== token) return recycled; // superseded by a later put of the same chunk
      this.latest.delete(i);
      if (r.zero) this.setZero(i);
      else this.set(i, Buffer.from(r.digest, 'hex'), r.stored ? Kind.New : Kind.Reused);
      return recycled;
    } catch (err) {
      if (this.latest.get(i) === token) {
        this.latest.delete(i);
        this.failure ??= err;
      }
      throw err;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Chunk i reads as zeros; supersedes any put of it still in flight. */
  putZero(i: number): void {
    this.checkOpen();
    this.checkIndex(i);
    this.latest.delete(i);
    this.setZero(i);
  }

  /** Waits for all puts, makes their chunk directories durable, then writes the index into
   *  the staging directory. Rejects if any put of a chunk that is still current failed. */
  finish(): Promise<void> {
    this.finishing ??= this.doFinish();
    return this.finishing;
  }

  get finished(): boolean {
    return this.result !== undefined;
  }

  /** @internal For garbage collection: calls `add` with every non-zero digest the image refers
   *  to now (chunks carried over from the base and those put so far), as 32-byte latin1 keys. */
  collectDigests(add: (key: string) => void): void {
    for (let off = 0; off < this.entries.length; off += DIGEST_LENGTH) {
      if (this.entries.compare(ZERO_DIGEST, 0, DIGEST_LENGTH, off, off + DIGEST_LENGTH) === 0) continue;
      add(this.entries.toString('latin1', off, off + DIGEST_LENGTH));
    }
  }

  /** @internal The index tree's node ids (format 2, once finished), as collectDigests. */
  collectNodeIds(add: (key: string) => void): void {
    for (const level of this.treeNodes ?? []) {
      for (let off = 0; off + DIGEST_LENGTH <= level.length; off += DIGEST_LENGTH) {
        if (level.compare(ZERO_DIGEST, 0, DIGEST_LENGTH, off, off + DIGEST_LENGTH) === 0) continue;
        add(level.toString('latin1', off, off + DIGEST_LENGTH));
      }
    }
  }

  /** @internal Resolves when no put is in flight (used by abort). */
  async settled(): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private async doFinish(): Promise<void> {
    await this.settled();
    if (this.failure !== undefined) {
      // a chunk file of another account this writer cannot rely on keeps its code (and its owner's name)
      const code = isAppError(this.failure, 'REPO_PERMISSION_DENIED') ? 'REPO_PERMISSION_DENIED' : 'REPO_IO_ERROR';
      throw new AppError(code, `disk ${this.device}: a chunk could not be stored, the index is incomplete`, { cause: this.failure });
    }
    const reason = this.ctx.closedReason();
    if (reason) throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: ${reason}`);
    // Chunks (and, format 2, index nodes) durable before the index file refers to them.
    const built = await this.ctx.sink.finishIndex({
      virtualSize: this.virtualSize,
      chunkSize: this.chunkSize,
      entries: this.entries,
      ...(this.baseTree ? { baseTree: this.baseTree } : {}),
      ...(this.dirty ? { dirty: this.dirty } : {}),
    });
    const encoded = built.file;
    this.treeNodes = built.tree;
    // The staging directory is fsynced once, by the commit, before the manifest is written.
    await writeFileAtomic(path.join(this.ctx.stagingDir, this.indexFile), encoded, { syncDir: false });
    await crashPoint('disk-index-written');
    this.result = { file: this.indexFile, sha256: sha256Hex(encoded), chunkCount: this.count };
  }

  private checkOpen(): void {
    const reason = this.ctx.closedReason();
    if (reason) throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: ${reason}`);
    if (this.finishing) throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: writer already finished`);
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new AppError('INVALID_ARGUMENT', `disk ${this.device}: chunk ${i} is outside 0..${this.count - 1}`);
    }
  }

  private setZero(i: number): void {
    this.entries.fill(0, i * DIGEST_LENGTH, (i + 1) * DIGEST_LENGTH);
    this.setKind(i, Kind.Zero);
  }

  private set(i: number, digest: Buffer, kind: Kind): void {
    digest.copy(this.entries, i * DIGEST_LENGTH);
    this.setKind(i, kind);
  }

  private setKind(i: number, kind: Kind): void {
    const fanout = this.ctx.sink.fanout;
    if (this.dirty && fanout) this.dirty[Math.floor(i / fanout)] = 1;
    const old = this.kinds[i] as Kind;
    this.kinds[i] = kind;
    this.bump(old, -1);
    this.bump(kind, +1);
  }

  private bump(kind: Kind, by: number): void {
    if (kind === Kind.Zero) this.statsLive.chunksZero += by;
    else if (kind === Kind.New) this.statsLive.chunksNew += by;
    else this.statsLive.chunksReused += by;
  }
}
