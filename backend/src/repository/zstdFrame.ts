/**
 * Chunks that do not compress (encrypted or already compressed guest data) are still stored as
 * one standard zstd frame (FORMAT.md §4), but built directly from "raw" blocks: a memory copy
 * instead of a compressor pass that would find nothing. Any zstd decoder reads these frames.
 * Layout per RFC 8878 §3.1.1: magic, a frame header with Single_Segment and a 4-byte
 * Frame_Content_Size, then Raw_Blocks of at most 128 KiB, the last one flagged.
 */
const ZSTD_MAGIC = 0xfd2fb528;
/** Frame_Header_Descriptor: FCS_Field_Size = 2 (4 bytes), Single_Segment_flag = 1. */
const DESCRIPTOR_SINGLE_SEGMENT_FCS4 = 0xa0;
const BLOCK_MAX = 128 * 1024;
const HEADER_BYTES = 4 + 1 + 4;
const BLOCK_HEADER_BYTES = 3;

export function rawFrameSize(length: number): number {
  const blocks = Math.max(1, Math.ceil(length / BLOCK_MAX));
  return HEADER_BYTES + blocks * BLOCK_HEADER_BYTES + length;
}

/** Writes `data` as a zstd frame of raw blocks into `out`; returns the frame's length. */
export function writeRawFrame(data: Buffer, out: Buffer): number {
  if (data.length > 0xffffffff) throw new RangeError('raw zstd frame: content larger than 4 GiB');
  if (out.length < rawFrameSize(data.length)) throw new RangeError('raw zstd frame: output buffer too small');
  out.writeUInt32LE(ZSTD_MAGIC, 0);
  out[4] = DESCRIPTOR_SINGLE_SEGMENT_FCS4;
  out.writeUInt32LE(data.length, 5);
  let pos = HEADER_BYTES;
  let off = 0;
  do {
    const n = Math.min(BLOCK_MAX, data.length - off);
    const last = off + n === data.length ? 1 : 0;
    // Block_Header: bit 0 Last_Block, bits 1-2 Block_Type (0 = Raw_Block), bits 3-23 Block_Size
    const header = last | (n << 3);
    out[pos] = header & 0xff;
    out[pos + 1] = (header >>> 8) & 0xff;
    out[pos + 2] = (header >>> 16) & 0xff;
    pos += BLOCK_HEADER_BYTES;
    data.copy(out, pos, off, off + n);
    pos += n;
    off += n;
  } while (off < data.length);
  return pos;
}

/** Bytes sampled to judge compressibility, and the ratio above which a chunk counts as
 *  incompressible: the cost of a 64 KiB trial is ~2 % of compressing 1 MiB. */
export const SAMPLE_BYTES = 64 * 1024;
export const INCOMPRESSIBLE_RATIO = 0.97;

/**
 * The same frame as writeRawFrame, as pieces that reference `data` instead of copying it: the
 * frame header, then per block its 3-byte header and its slice of `data`. Written with one
 * writev, the content crosses memory once (into the page cache) instead of three times.
 */
export function rawFramePieces(data: Buffer): Buffer[] {
  if (data.length > 0xffffffff) throw new RangeError('raw zstd frame: content larger than 4 GiB');
  const blocks = Math.max(1, Math.ceil(data.length / BLOCK_MAX));
  const headers = Buffer.alloc(HEADER_BYTES + blocks * BLOCK_HEADER_BYTES);
  headers.writeUInt32LE(ZSTD_MAGIC, 0);
  headers[4] = DESCRIPTOR_SINGLE_SEGMENT_FCS4;
  headers.writeUInt32LE(data.length, 5);
  const pieces: Buffer[] = [headers.subarray(0, HEADER_BYTES)];
  let pos = HEADER_BYTES;
  let off = 0;
  do {
    const n = Math.min(BLOCK_MAX, data.length - off);
    const header = (off + n === data.length ? 1 : 0) | (n << 3);
    headers[pos] = header & 0xff;
    headers[pos + 1] = (header >>> 8) & 0xff;
    headers[pos + 2] = (header >>> 16) & 0xff;
    pieces.push(headers.subarray(pos, pos + BLOCK_HEADER_BYTES), data.subarray(off, off + n));
    pos += BLOCK_HEADER_BYTES;
    off += n;
  } while (off < data.length);
  return pieces;
}
