import { AppError } from '../../errors';
import type { DiskIndex } from '../../repository';
import type { PointSource } from '../pointSource';
import { dataRanges } from '../sparse';
import { StreamHash } from './streamHash';

/** One upload request's worth of a disk: bytes to PUT, or a range to zero with PATCH. */
export type Segment = { kind: 'data'; offset: number; length: number; buffers: Buffer[] } | { kind: 'zero'; offset: number; length: number };

export interface SegmentLimits {
  /** Largest PUT body; adjacent data across chunks is merged up to this. */
  maxData: number;
  /** Largest zero request; adjacent zero chunks and zero runs are merged up to this. */
  maxZero: number;
  /** Chunk reads (decompress + digest check, in the repository's workers) kept ahead. */
  readAhead: number;
}

export const DEFAULT_LIMITS: SegmentLimits = { maxData: 8 << 20, maxZero: 1 << 30, readAhead: 16 };

/**
 * A point's disk as a sequence of upload requests, in disk order: stored chunks are read
 * (a few ahead), zero chunks and zero runs inside chunks (at HOLE_GRANULARITY) become zero
 * ranges, never data. On the way it hashes the guest-visible bytes (zero chunks as zeros, on
 * a thread of its own), which is the checksum the verification compares with.
 */
export class PointStream {
  private digest: Promise<string> | undefined;
  /** Start of the chunk being produced: where a read failure happened. */
  position = 0;

  constructor(
    private readonly source: Pick<PointSource, 'readChunk'>,
    private readonly index: DiskIndex,
    private readonly limits: SegmentLimits = DEFAULT_LIMITS,
    private readonly signal?: AbortSignal,
  ) {}

  /** SHA-256 (hex) of the whole disk; available once the segments were all produced. */
  sha256(): Promise<string> {
    if (this.digest === undefined) return Promise.reject(new AppError('INVALID_ARGUMENT', 'the point stream was not read to its end'));
    return this.digest;
  }

  async *segments(): AsyncGenerator<Segment> {
    const hash = new StreamHash();
    try {
      yield* this.produce(hash);
    } finally {
      if (this.digest === undefined) hash.close();
    }
  }

  private async *produce(hash: StreamHash): AsyncGenerator<Segment> {
    const { index } = this;
    const pending = new Map<number, Promise<Buffer>>();
    let ahead = 0;
    const fetch = (): void => {
      while (pending.size < this.limits.readAhead && ahead < index.count) {
        const i = ahead++;
        if (index.isZero(i)) continue;
        const p = this.source.readChunk(index.digest(i), index.chunkLength(i));
        p.catch(() => undefined); // awaited in order below; a failure ahead must not go unhandled
        pending.set(i, p);
      }
    };
    let cur: Segment | undefined;
    // Appends a piece; returns the segment it completed, if any.
    const push = (kind: 'data' | 'zero', offset: number, length: number, buf?: Buffer): Segment | undefined => {
      const limit = kind === 'data' ? this.limits.maxData : this.limits.maxZero;
      if (cur && cur.kind === kind && cur.offset + cur.length === offset && cur.length + length <= limit) {
        cur.length += length;
        if (cur.kind === 'data' && buf) cur.buffers.push(buf);
        return undefined;
      }
      const done = cur;
      cur = kind === 'data' && buf ? { kind, offset, length, buffers: [buf] } : { kind: 'zero', offset, length };
      return done;
    };
    for (let i = 0; i < index.count; i++) {
      if (this.signal?.aborted) throw new AppError('ABORTED', 'reading the point aborted', { cause: this.signal.reason });
      fetch();
      const offset = i * index.chunkSize;
      const length = index.chunkLength(i);
      this.position = offset;
      const read = pending.get(i);
      if (read === undefined) {
        hash.zeros(length);
        const out = push('zero', offset, length);
        if (out) yield out;
        continue;
      }
      pending.delete(i);
      const data = await read;
      await hash.update(data);
      let pos = 0;
      for (const [s, e] of dataRanges(data)) {
        if (s > pos) {
          const z = push('zero', offset + pos, s - pos);
          if (z) yield z;
        }
        const d = push('data', offset + s, e - s, data.subarray(s, e));
        if (d) yield d;
        pos = e;
      }
      if (pos < length) {
        const z = push('zero', offset + pos, length - pos);
        if (z) yield z;
      }
    }
    this.position = index.virtualSize;
    this.digest = hash.digest();
    this.digest.catch(() => undefined); // asked for by sha256(), or dropped with a failed upload
    if (cur) yield cur;
  }
}
