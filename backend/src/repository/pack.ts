/**
 * Pack files of format 2 (FORMAT.md §17): blobs appended one after the other, then a table of
 * contents and a footer with the SHA-256 of everything before it, so that a pack can be read
 * and verified on its own. The file is named by the SHA-256 of its whole content. PackBuilder
 * writes one (in a staging directory, then one rename into packs/); parsePackTail and
 * checkPackFile read one back.
 */
import { createHash, randomBytes, type Hash } from 'crypto';
import { promises as fs } from 'fs';
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
 * One pack being written. Appends run one after the other (the content hash is computed as the
 * file grows); seal() writes the table and footer, fsyncs, and renames the file into packs/.
 */
export class PackBuilder {
  private fh: fs.FileHandle | undefined;
  private readonly hash: Hash = createHash('sha256');
  private pos = PACK_HEADER_SIZE;
  private readonly entries: PackEntry[] = [];
  private chain: Promise<void> = Promise.resolve();
  private failed: unknown;
  /** Set by the owner once it stops appending (the pack is being sealed or discarded). */
  closing = false;

  private constructor(
    private readonly root: string,
    private readonly tmpFile: string,
  ) {}

  /** A new pack in `tmpDir` (created if needed) of repository `root`. */
  static async create(root: string, tmpDir: string): Promise<PackBuilder> {
    await fs.mkdir(tmpDir, { recursive: true });
    const b = new PackBuilder(root, path.join(tmpDir, `${randomBytes(8).toString('hex')}.pack`));
    b.fh = await fs.open(b.tmpFile, 'wx', 0o444);
    const header = Buffer.alloc(PACK_HEADER_SIZE);
    PACK_MAGIC.copy(header, 0);
    header.writeUInt32LE(PACK_VERSION, 8);
    await b.fh.write(header, 0, header.length, 0);
    b.hash.update(header);
    return b;
  }

  /** Bytes in the pack so far (blobs and header). */
  get size(): number {
    return this.pos;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Appends a blob; resolves when it is written (not yet durable: seal() syncs). */
  append(id: Buffer, type: BlobType, stored: Buffer, plainLength: number): Promise<PackEntry> {
    const entry: PackEntry = { id: Buffer.from(id), type, offset: this.pos, storedLength: stored.length, plainLength };
    this.pos += stored.length;
    this.entries.push(entry);
    this.hash.update(stored);
    const write = this.chain.then(async () => {
      if (this.failed !== undefined) throw this.failed;
      const fh = this.fh;
      if (!fh) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
      for (let off = 0; off < stored.length; ) {
        const { bytesWritten } = await fh.write(stored, off, stored.length - off, entry.offset + off);
        off += bytesWritten;
      }
    });
    this.chain = write.catch((err: unknown) => {
      this.failed ??= err;
    });
    return write.then(() => entry);
  }

  /** Table, footer, fsync, rename to packs/<ab>/<sha256>, fsync of that directory. */
  async seal(): Promise<SealedPack> {
    await this.chain;
    if (this.failed !== undefined) throw new AppError('REPO_IO_ERROR', `writing pack ${this.tmpFile} failed`, { cause: this.failed });
    const fh = this.fh;
    if (!fh) throw new AppError('REPO_IO_ERROR', `pack ${this.tmpFile} is closed`);
    const tail = encodeTail(this.entries, this.pos, this.hash);
    const name = tail.name;
    for (let off = 0; off < tail.bytes.length; ) {
      const { bytesWritten } = await fh.write(tail.bytes, off, tail.bytes.length - off, this.pos + off);
      off += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    this.fh = undefined;
    const final = packPath(this.root, name);
    const dir = path.dirname(final);
    let madeDir = false;
    try {
      await fs.mkdir(dir);
      madeDir = true;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    await fs.rename(this.tmpFile, final);
    await fsyncDir(dir);
    if (madeDir) await fsyncDir(path.dirname(dir));
    return { name, entries: this.entries, bytes: this.pos + tail.bytes.length };
  }

  /** Closes and removes the unfinished file. */
  async discard(): Promise<void> {
    await this.chain;
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    await fs.rm(this.tmpFile, { force: true });
  }
}

function encodeTail(entries: PackEntry[], tocOffset: number, hash: Hash): { bytes: Buffer; name: string } {
  const toc = Buffer.alloc(entries.length * TOC_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const o = i * TOC_ENTRY_SIZE;
    e.id.copy(toc, o);
    toc.writeBigUInt64LE(BigInt(e.offset), o + 32);
    toc.writeUInt32LE(e.storedLength, o + 40);
    toc.writeUInt32LE(e.plainLength, o + 44);
    toc.writeUInt8(e.type, o + 48);
  });
  hash.update(toc);
  const footer = Buffer.alloc(PACK_FOOTER_SIZE);
  footer.writeBigUInt64LE(BigInt(tocOffset), 0);
  footer.writeUInt32LE(entries.length, 8);
  hash.copy().digest().copy(footer, 16);
  PACK_END_MAGIC.copy(footer, 48);
  // the name is the SHA-256 of the whole file, footer included
  const name = hash.update(footer).digest('hex');
  return { bytes: Buffer.concat([toc, footer]), name };
}

export interface PackTail {
  entries: PackEntry[];
  tocOffset: number;
  /** The checksum the footer records for everything before it. */
  bodySha256: Buffer;
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
    const entries = parseToc(toc, tocOffset, bad);
    return { entries, tocOffset, bodySha256: Buffer.from(footer.subarray(16, 48)), size };
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
