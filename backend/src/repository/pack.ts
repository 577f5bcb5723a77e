/**
 * Pack files of format 2 (FORMAT.md §17): blobs appended one after the other, then a table of
 * contents and a footer (CRC-32 of the blobs, SHA-256 of the table), so that a pack can be read
 * and verified on its own. The file is named by the SHA-256 of its footer. PackFile writes one
 * (in a staging directory, then one rename into packs/); readPackTail reads one back.
 */
import { createHash, randomBytes } from 'crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, promises as fs, renameSync, rmSync, writeSync } from 'fs';
import * as path from 'path';
import { crc32 } from 'zlib';
import { AppError } from '../errors';
import { isErrno } from './atomicFile';
import { packPath } from './layout';

export const PACK_MAGIC = Buffer.from('OLVBPACK', 'latin1');
export const PACK_END_MAGIC = Buffer.from('OLVBPEND', 'latin1');
export const PACK_VERSION = 2;
export const PACK_HEADER_SIZE = 16;
export const TOC_ENTRY_SIZE = 56;
export const PACK_FOOTER_SIZE = 56;

/** What a blob is: a disk chunk, or a node of a disk index tree (FORMAT.md §19). */
export const enum BlobType {
  Chunk = 1,
  TreeNode = 2,
}

export interface PackEntry {
  id: Buffer;
  type: BlobType;
  offset: number;
  storedLength: number;
  plainLength: number;
}

export interface SealedPack {
  /** sha256 hex of the whole file: its name under packs/. */
  name: string;
  entries: PackEntry[];
  bytes: number;
}

/**
 * One pack being written, by one worker thread, with synchronous calls (the thread does nothing
 * else meanwhile; FORMAT.md §17). Blobs are appended; seal() writes the table and footer,
 * fsyncs, and renames the file into packs/ — from then on it is durable under its final name.
 */
export class PackFile {
  private pos = PACK_HEADER_SIZE;
  private crc: number;
  readonly entries: PackEntry[] = [];

  private constructor(
    private fd: number | undefined,
    readonly tmpFile: string,
    header: Buffer,
  ) {
    this.crc = crc32(header);
  }

  static create(tmpDir: string): PackFile {
    mkdirSync(tmpDir, { recursive: true });
    const file = path.join(tmpDir, `${randomBytes(8).toString('hex')}.pack`);
    const fd = openSync(file, 'wx', 0o444);
    const header = Buffer.alloc(PACK_HEADER_SIZE);
    PACK_MAGIC.copy(header, 0);
    header.writeUInt32LE(PACK_VERSION, 8);
    const pf = new PackFile(fd, file, header);
    writeAll(fd, header, 0);
    return pf;
  }

  /** Bytes in the pack so far (header and blobs). */
  get size(): number {
    return this.pos;
  }

  append(id: Buffer, type: BlobType, stored: Uint8Array, plainLength: number): PackEntry {
    if (this.fd === undefined) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
    const entry: PackEntry = { id: Buffer.from(id), type, offset: this.pos, storedLength: stored.length, plainLength };
    writeAll(this.fd, stored, this.pos);
    this.crc = crc32(stored, this.crc);
    this.pos += stored.length;
    this.entries.push(entry);
    return entry;
  }

  /** Table, footer, fsync, rename to packs/<ab>/<name>, fsync of that directory (and of packs/
   *  when <ab> is new). */
  seal(root: string): SealedPack {
    const fd = this.fd;
    if (fd === undefined) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
    const toc = encodeToc(this.entries);
    const footer = encodeFooter(this.pos, this.entries.length, this.crc, toc);
    writeAll(fd, toc, this.pos);
    writeAll(fd, footer, this.pos + toc.length);
    fsyncSync(fd);
    closeSync(fd);
    this.fd = undefined;
    const name = packNameOf(footer);
    const final = packPath(root, name);
    const dir = path.dirname(final);
    let madeDir = false;
    try {
      mkdirSync(dir);
      madeDir = true;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    renameSync(this.tmpFile, final);
    fsyncDirSync(dir);
    if (madeDir) fsyncDirSync(path.dirname(dir));
    return { name, entries: this.entries, bytes: this.pos + toc.length + footer.length };
  }

  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmpFile, { force: true });
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, position + off);
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function encodeToc(entries: readonly PackEntry[]): Buffer {
  const toc = Buffer.alloc(entries.length * TOC_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const o = i * TOC_ENTRY_SIZE;
    e.id.copy(toc, o);
    toc.writeBigUInt64LE(BigInt(e.offset), o + 32);
    toc.writeUInt32LE(e.storedLength, o + 40);
    toc.writeUInt32LE(e.plainLength, o + 44);
    toc.writeUInt8(e.type, o + 48);
  });
  return toc;
}

/** u64 table offset, u32 entries, u32 CRC-32 of header and blobs, SHA-256 of the table, end magic. */
export function encodeFooter(tocOffset: number, count: number, bodyCrc: number, toc: Buffer): Buffer {
  const footer = Buffer.alloc(PACK_FOOTER_SIZE);
  footer.writeBigUInt64LE(BigInt(tocOffset), 0);
  footer.writeUInt32LE(count, 8);
  footer.writeUInt32LE(bodyCrc >>> 0, 12);
  createHash('sha256').update(toc).digest().copy(footer, 16);
  PACK_END_MAGIC.copy(footer, 48);
  return footer;
}

/** A pack's name: the SHA-256 of its footer, which commits to the table (by hash) and to the
 *  blobs (by their ids in the table, and the CRC of their bytes). */
export function packNameOf(footer: Buffer): string {
  return createHash('sha256').update(footer).digest('hex');
}

export interface PackTail {
  entries: PackEntry[];
  tocOffset: number;
  /** CRC-32 the footer records for the header and blobs. */
  bodyCrc: number;
  /** The name the footer gives the pack (its file name, unless renamed). */
  name: string;
  size: number;
}

/** Reads and checks a pack's footer and table (not its blobs). REPO_CORRUPT naming `what`. */
export async function readPackTail(file: string, what: string): Promise<PackTail> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const bad = (why: string): AppError => new AppError('REPO_CORRUPT', `${what}: ${why}`, { details: { kind: 'pack-corrupt' } });
    if (size < PACK_HEADER_SIZE + PACK_FOOTER_SIZE) throw bad(`only ${size} bytes, shorter than header and footer`);
    const footer = Buffer.alloc(PACK_FOOTER_SIZE);
    await fh.read(footer, 0, PACK_FOOTER_SIZE, size - PACK_FOOTER_SIZE);
    if (!footer.subarray(48).equals(PACK_END_MAGIC)) throw bad('no pack footer (truncated?)');
    const tocOffset = Number(footer.readBigUInt64LE(0));
    const count = footer.readUInt32LE(8);
    if (tocOffset < PACK_HEADER_SIZE || tocOffset + count * TOC_ENTRY_SIZE !== size - PACK_FOOTER_SIZE) throw bad('table of contents does not fit the file');
    const toc = Buffer.alloc(count * TOC_ENTRY_SIZE);
    if (count > 0) await fh.read(toc, 0, toc.length, tocOffset);
    if (!createHash('sha256').update(toc).digest().equals(footer.subarray(16, 48))) throw bad('table of contents does not match its checksum');
    const entries = parseToc(toc, tocOffset, bad);
    return { entries, tocOffset, bodyCrc: footer.readUInt32LE(12), name: packNameOf(footer), size };
  } finally {
    await fh.close();
  }
}

function parseToc(toc: Buffer, tocOffset: number, bad: (why: string) => AppError): PackEntry[] {
  const entries: PackEntry[] = [];
  let next = PACK_HEADER_SIZE;
  for (let o = 0; o < toc.length; o += TOC_ENTRY_SIZE) {
    const offset = Number(toc.readBigUInt64LE(o + 32));
    const storedLength = toc.readUInt32LE(o + 40);
    const plainLength = toc.readUInt32LE(o + 44);
    const type = toc.readUInt8(o + 48);
    if (type !== BlobType.Chunk && type !== BlobType.TreeNode) throw bad(`entry ${o / TOC_ENTRY_SIZE} has unknown type ${type}`);
    if (offset !== next || storedLength === 0 || offset + storedLength > tocOffset) throw bad(`entry ${o / TOC_ENTRY_SIZE} lies outside the blob area`);
    next = offset + storedLength;
    entries.push({ id: Buffer.from(toc.subarray(o, o + 32)), type, offset, storedLength, plainLength });
  }
  if (next !== tocOffset) throw bad('blobs do not fill the space before the table');
  return entries;
}

/** CRC-32 of a pack's header and blobs, read in large pieces, against its footer. */
export async function packBodyCrcMatches(file: string, tail: PackTail): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    let crc = 0;
    for (let pos = 0; pos < tail.tocOffset; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, tail.tocOffset - pos), pos);
      if (bytesRead === 0) return false;
      crc = crc32(buf.subarray(0, bytesRead), crc);
      pos += bytesRead;
    }
    return crc >>> 0 === tail.bodyCrc >>> 0;
  } finally {
    await fh.close();
  }
}
