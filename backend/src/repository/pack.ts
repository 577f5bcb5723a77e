/**
 * Pack files of format 2 (FORMAT.md §17): blobs appended one after the other, then a table of
 * contents and a footer (the SHA-256 of the table), so that a pack can be read
 * and verified on its own. The file is named by the SHA-256 of its footer. PackFile writes one
 * in a staging directory, publishPack makes it durable and renames it into packs/; readPackTail reads one back.
 */
import { createHash, randomBytes } from 'crypto';
import { closeSync, mkdirSync, openSync, promises as fs, rmSync, writeSync, writevSync } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno } from './atomicFile';
import { packPath } from './layout';

export const PACK_MAGIC = Buffer.from('OLVBPACK', 'latin1');
export const PACK_END_MAGIC = Buffer.from('OLVBPEND', 'latin1');
export const PACK_VERSION = 2;
export const PACK_HEADER_SIZE = 16;
export const TOC_ENTRY_SIZE = 56;
export const PACK_FOOTER_SIZE = 56;

/** What a blob is: a disk chunk, or a node of a disk index tree (FORMAT.md §19). */
export const BlobType = { Chunk: 1, TreeNode: 2 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export function isBlobType(n: number): n is BlobType {
  return n === BlobType.Chunk || n === BlobType.TreeNode;
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
 * else meanwhile; FORMAT.md §17). Blobs are appended; finish() writes the table and footer.
 */
export class PackFile {
  private pos = PACK_HEADER_SIZE;
  readonly entries: PackEntry[] = [];

  private constructor(
    private fd: number | undefined,
    readonly tmpFile: string,
  ) {}

  static create(tmpDir: string): PackFile {
    mkdirSync(tmpDir, { recursive: true });
    const file = path.join(tmpDir, `${randomBytes(8).toString('hex')}.pack`);
    const fd = openSync(file, 'wx', 0o444);
    const header = Buffer.alloc(PACK_HEADER_SIZE);
    PACK_MAGIC.copy(header, 0);
    header.writeUInt32LE(PACK_VERSION, 8);
    const pf = new PackFile(fd, file);
    writeAll(fd, header, 0);
    return pf;
  }

  /** Bytes in the pack so far (header and blobs). */
  get size(): number {
    return this.pos;
  }

  /** Appends a blob given as pieces of its stored form (one writev). */
  append(id: Buffer, type: BlobType, stored: Buffer[], plainLength: number): PackEntry {
    if (this.fd === undefined) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
    const length = stored.reduce((n, b) => n + b.length, 0);
    const entry: PackEntry = { id: Buffer.from(id), type, offset: this.pos, storedLength: length, plainLength };
    writevAll(this.fd, stored, this.pos);
    this.pos += length;
    this.entries.push(entry);
    return entry;
  }

  /** Writes the table and footer and closes the file; it still has to be made durable and
   *  renamed into packs/ (publishPack), which the caller does off this thread. */
  finish(): FinishedPack {
    const fd = this.fd;
    if (fd === undefined) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
    const toc = encodeToc(this.entries);
    const footer = encodeFooter(this.pos, this.entries.length, toc);
    try {
      writeAll(fd, toc, this.pos);
      writeAll(fd, footer, this.pos + toc.length);
    } finally {
      closeSync(fd);
      this.fd = undefined;
    }
    return { tmpFile: this.tmpFile, name: packNameOf(footer), entries: this.entries, bytes: this.pos + toc.length + footer.length };
  }

  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmpFile, { force: true });
  }
}

function writevAll(fd: number, pieces: Buffer[], position: number): void {
  let rest = pieces;
  let pos = position;
  while (rest.length > 0) {
    let n = writevSync(fd, rest, pos);
    pos += n;
    // a short write: drop what was written, keep the rest of a piece cut in the middle
    let i = 0;
    while (i < rest.length && n >= (rest[i] as Buffer).length) n -= (rest[i++] as Buffer).length;
    rest = rest.slice(i);
    if (n > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(n);
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, position + off);
}

export interface FinishedPack extends SealedPack {
  /** Where the complete (not yet durable) pack is. */
  tmpFile: string;
}

/** fsync, rename to packs/<ab>/<name>, fsync of that directory (and of packs/ when <ab> is new):
 *  from then on the pack is durable under its final name. */
export async function publishPack(root: string, pack: { tmpFile: string; name: string }): Promise<void> {
  const fh = await fs.open(pack.tmpFile, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  const final = packPath(root, pack.name);
  const dir = path.dirname(final);
  let madeDir = false;
  try {
    await fs.mkdir(dir);
    madeDir = true;
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  await fs.rename(pack.tmpFile, final);
  await fsyncDir(dir);
  if (madeDir) await fsyncDir(path.dirname(dir));
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

/** u64 table offset, u32 entries, u32 random salt, SHA-256 of the table, end magic. The blobs need no
 *  checksum of their own here: each is checked against its id (and, encrypted, its tag). */
export function encodeFooter(tocOffset: number, count: number, toc: Buffer): Buffer {
  const footer = Buffer.alloc(PACK_FOOTER_SIZE);
  footer.writeBigUInt64LE(BigInt(tocOffset), 0);
  footer.writeUInt32LE(count, 8);
  // a random salt: two packs of the same blobs in the same order get two names, so a pack is
  // never replaced by another file under its name (verify and gc judge files by name)
  randomBytes(4).copy(footer, 12);
  createHash('sha256').update(toc).digest().copy(footer, 16);
  PACK_END_MAGIC.copy(footer, 48);
  return footer;
}

/** A pack's name: the SHA-256 of its footer, which commits to the table (by its hash) and so
 *  to the blobs (by their ids, offsets and lengths). */
export function packNameOf(footer: Buffer): string {
  return createHash('sha256').update(footer).digest('hex');
}

export interface PackTail {
  entries: PackEntry[];
  tocOffset: number;
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
    return { entries, tocOffset, name: packNameOf(footer), size };
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
    if (!isBlobType(type)) throw bad(`entry ${o / TOC_ENTRY_SIZE} has unknown type ${type}`);
    if (offset !== next || storedLength === 0 || offset + storedLength > tocOffset) throw bad(`entry ${o / TOC_ENTRY_SIZE} lies outside the blob area`);
    next = offset + storedLength;
    entries.push({ id: Buffer.from(toc.subarray(o, o + 32)), type, offset, storedLength, plainLength });
  }
  if (next !== tocOffset) throw bad('blobs do not fill the space before the table');
  return entries;
}

