/**
 * The stored form of a format-2 blob (FORMAT.md §17): a zstd frame of the plain content (raw
 * blocks when it does not compress), sealed with AES-256-GCM in encrypted repositories, named
 * by SHA-256 (plain) or HMAC-SHA256 (encrypted) of the plain content. Used by the pack workers
 * for chunks and by the main thread for index tree nodes; pure CPU, no I/O.
 */
import { createHash } from 'crypto';
import * as zstd from 'zstd-napi/binding';
import { INCOMPRESSIBLE_RATIO, rawFramePieces, SAMPLE_BYTES } from './zstdFrame';

/** What encryption adds (repoKey.ts provides it); absent in a plain repository. */
export interface BlobCrypt {
  id(plain: Uint8Array): Buffer;
  /** Encrypts the frame given in pieces (in order); the sealed form in pieces. */
  seal(frame: Buffer[], aad: Buffer): Buffer[];
  /** REPO_CORRUPT (kind blob-auth-failed) when the tag does not match: never garbage. */
  open(sealed: Buffer, aad: Buffer, what: string): Buffer;
}

export type DecodeStatus = { ok: true } | { ok: false; message: string };

export class BlobCodec {
  private readonly cctx = new zstd.CCtx();
  private readonly probe = new zstd.CCtx();
  private readonly dctx = new zstd.DCtx();
  private probeOut = Buffer.alloc(0);
  private zeros = Buffer.alloc(0);
  private out = Buffer.alloc(0);

  constructor(
    level: number,
    private readonly crypt: BlobCrypt | null,
  ) {
    this.cctx.setParameter(zstd.CParameter.compressionLevel, level);
    this.cctx.setParameter(zstd.CParameter.contentSizeFlag, 1);
    this.probe.setParameter(zstd.CParameter.compressionLevel, 1);
  }

  get encrypted(): boolean {
    return this.crypt !== null;
  }

  isAllZero(data: Uint8Array): boolean {
    if (this.zeros.length < data.length) this.zeros = Buffer.alloc(data.length);
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(this.zeros.subarray(0, data.length));
  }

  id(plain: Uint8Array): Buffer {
    return this.crypt ? this.crypt.id(plain) : createHash('sha256').update(plain).digest();
  }

  /** The stored form, as pieces to write one after the other. They may reference `plain` and a
   *  reused buffer: valid until the next encode, and as long as `plain` is not changed. */
  encode(id: Buffer, plain: Buffer): Buffer[] {
    let frame: Buffer[];
    if (this.looksIncompressible(plain)) {
      frame = rawFramePieces(plain);
    } else {
      const bound = zstd.compressBound(plain.length);
      if (this.out.length < bound) this.out = Buffer.allocUnsafeSlow(bound);
      frame = [this.out.subarray(0, this.cctx.compress2(this.out, plain))];
    }
    return this.crypt ? this.crypt.seal(frame, id) : frame;
  }

  /** encode() in one Buffer of its own. */
  encodeWhole(id: Buffer, plain: Buffer): Buffer {
    return Buffer.concat(this.encode(id, plain));
  }

  /** Opens, decompresses into `out` (exactly `length` bytes) and checks the id. */
  decode(stored: Buffer, id: Buffer, length: number, out: Buffer, what: string): DecodeStatus {
    let frame: Buffer;
    try {
      frame = this.crypt ? this.crypt.open(stored, id, what) : stored;
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
    let n: number;
    try {
      const size = zstd.getFrameContentSize(frame);
      if (size !== length) return { ok: false, message: `${what} holds ${String(size)} bytes, expected ${length}` };
      n = this.dctx.decompress(out, frame);
    } catch (err) {
      return { ok: false, message: `${what} does not decompress: ${(err as Error).message}` };
    }
    if (n !== length) return { ok: false, message: `${what} decompressed to ${n} bytes, expected ${length}` };
    const actual = this.id(out.subarray(0, length));
    if (!actual.equals(id)) return { ok: false, message: `${what}: content does not match its id` };
    return { ok: true };
  }

  /** Two samples (start and middle) that both fail to shrink mark the content as incompressible. */
  private looksIncompressible(data: Buffer): boolean {
    if (data.length < SAMPLE_BYTES) return false;
    // two samples of 1/32 of the chunk each (at most 32 KiB): 6 % of the data, whatever the
    // chunk size (a fixed 64 KiB was a quarter of a 256 KiB chunk)
    const half = Math.min(SAMPLE_BYTES / 2, data.length >> 5);
    const bound = zstd.compressBound(half);
    if (this.probeOut.length < bound) this.probeOut = Buffer.allocUnsafeSlow(bound);
    for (const start of [0, Math.floor(data.length / 2)]) {
      const n = this.probe.compress2(this.probeOut, data.subarray(start, start + half));
      if (n < half * INCOMPRESSIBLE_RATIO) return false;
    }
    return true;
  }
}
