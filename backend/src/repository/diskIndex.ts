import { AppError } from '../errors';
import { DIGEST_LENGTH, ZERO_DIGEST } from './digest';

/** FORMAT.md §5: 32-byte little-endian header, then one 32-byte SHA-256 per chunk. */
export const INDEX_MAGIC = Buffer.from('OLVBIDX\0', 'latin1');
export const INDEX_VERSION = 1;
export const INDEX_HEADER_SIZE = 32;

export function chunkCountFor(virtualSize: number, chunkSize: number): number {
  return Math.ceil(virtualSize / chunkSize);
}

/** The chunk list of one disk in one point: chunk i covers bytes [i*chunkSize, i*chunkSize + chunkLength(i)). */
export class DiskIndex {
  readonly virtualSize: number;
  readonly chunkSize: number;
  readonly count: number;
  private readonly digests: Buffer;
  /** Format 2: the ids of the index tree's nodes, level by level (treeIndex.ts), so that the
   *  next point stores only the nodes it changes. Undefined for a format-1 index. */
  readonly tree: Buffer[] | undefined;

  /** @internal Use DiskIndex.parse or Repository.readIndex. `digests` is taken, not copied. */
  constructor(virtualSize: number, chunkSize: number, digests: Buffer, tree?: Buffer[]) {
    const count = chunkCountFor(virtualSize, chunkSize);
    if (digests.length !== count * DIGEST_LENGTH) {
      throw new AppError('INVALID_ARGUMENT', `index of ${count} chunks needs ${count * DIGEST_LENGTH} digest bytes, got ${digests.length}`);
    }
    this.virtualSize = virtualSize;
    this.chunkSize = chunkSize;
    this.count = count;
    this.digests = digests;
    this.tree = tree;
  }

  /** 32 bytes (a copy). */
  digest(i: number): Buffer {
    this.check(i);
    return Buffer.from(this.digests.subarray(i * DIGEST_LENGTH, (i + 1) * DIGEST_LENGTH));
  }

  digestHex(i: number): string {
    this.check(i);
    return this.digests.toString('hex', i * DIGEST_LENGTH, (i + 1) * DIGEST_LENGTH);
  }

  isZero(i: number): boolean {
    this.check(i);
    return this.digests.compare(ZERO_DIGEST, 0, DIGEST_LENGTH, i * DIGEST_LENGTH, (i + 1) * DIGEST_LENGTH) === 0;
  }

  chunkLength(i: number): number {
    this.check(i);
    return Math.min(this.chunkSize, this.virtualSize - i * this.chunkSize);
  }

  /** @internal A copy of all digests, for a writer that starts from this index. */
  copyDigests(): Buffer {
    return Buffer.from(this.digests);
  }

  /** The on-disk encoding (FORMAT.md §5). */
  encode(): Buffer {
    return encodeIndex(this.virtualSize, this.chunkSize, this.digests);
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new AppError('INVALID_ARGUMENT', `chunk ${i} is outside the index (0..${this.count - 1})`);
    }
  }

  static parse(buf: Buffer, what: string): DiskIndex {
    const bad = (why: string): AppError => new AppError('REPO_CORRUPT', `${what}: ${why}`, { details: { kind: 'index-corrupt' } });
    if (buf.length < INDEX_HEADER_SIZE) throw bad(`only ${buf.length} bytes, shorter than the header`);
    if (!buf.subarray(0, 8).equals(INDEX_MAGIC)) throw bad('bad magic');
    const version = buf.readUInt32LE(8);
    if (version !== INDEX_VERSION) throw bad(`unsupported index version ${version}`);
    const chunkSize = buf.readUInt32LE(12);
    const virtualSize = Number(buf.readBigUInt64LE(16));
    const count = Number(buf.readBigUInt64LE(24));
    if (chunkSize === 0 || (chunkSize & (chunkSize - 1)) !== 0) throw bad(`invalid chunk size ${chunkSize}`);
    if (!Number.isSafeInteger(virtualSize)) throw bad(`virtual size out of range`);
    if (count !== chunkCountFor(virtualSize, chunkSize)) throw bad(`chunk count ${count} does not match virtual size ${virtualSize}`);
    if (buf.length !== INDEX_HEADER_SIZE + count * DIGEST_LENGTH) {
      throw bad(`length ${buf.length} does not match ${count} chunks`);
    }
    return new DiskIndex(virtualSize, chunkSize, buf.subarray(INDEX_HEADER_SIZE));
  }
}

export function encodeIndex(virtualSize: number, chunkSize: number, digests: Buffer): Buffer {
  const count = chunkCountFor(virtualSize, chunkSize);
  const header = Buffer.alloc(INDEX_HEADER_SIZE);
  INDEX_MAGIC.copy(header, 0);
  header.writeUInt32LE(INDEX_VERSION, 8);
  header.writeUInt32LE(chunkSize, 12);
  header.writeBigUInt64LE(BigInt(virtualSize), 16);
  header.writeBigUInt64LE(BigInt(count), 24);
  return Buffer.concat([header, digests]);
}
