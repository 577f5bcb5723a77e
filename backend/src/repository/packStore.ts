/**
 * The blob store of format 2 (FORMAT.md §17–§18): chunks and index nodes in pack files, found
 * through the repository index. Reading goes to the worker threads (pread, decrypt, decompress,
 * check); writing goes through a PackSession per point writer, which appends to its own packs
 * (one sequential file at a time, one fsync per pack) and, on flush, makes them findable with
 * one index file.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import { BlobCodec } from './blobCodec';
import { blobCrypt } from './blobCrypt';
import type { ChunkReader } from './chunkReader';
import type { ChunkStatus, PackWorkerInit, PutResult, ReadResult, SealResult } from './chunkProtocol';
import { ChunkWorkerPool } from './chunkWorkers';
import { DiskIndex } from './diskIndex';
import { packPath } from './layout';
import { BlobType, PackBuilder, type SealedPack } from './pack';
import { RepoIndex, writeIndexFile, type BlobLocation } from './repoIndex';
import type { RepoKey } from './repoKey';
import { parseRoot, readTree } from './treeIndex';

export interface PackStoreOptions {
  root: string;
  zstdLevel: number;
  packSize: number;
  key: RepoKey | null;
  workers?: number;
}

export class PackStore implements ChunkReader {
  readonly index: RepoIndex;
  /** Main-thread codec, for index tree nodes (small, few). */
  readonly codec: BlobCodec;
  private pool: ChunkWorkerPool | undefined;
  /** Blob locations verify found corrupt (pack:offset): never read, never deduplicated against. */
  private readonly bad = new Set<string>();

  constructor(private readonly opts: PackStoreOptions) {
    this.index = new RepoIndex(opts.root);
    this.codec = new BlobCodec(opts.zstdLevel, blobCrypt(opts.key));
  }

  get root(): string {
    return this.opts.root;
  }

  get packSize(): number {
    return this.opts.packSize;
  }

  workers(): ChunkWorkerPool {
    const init: PackWorkerInit = { zstdLevel: this.opts.zstdLevel, ...(this.opts.key ? { key: keyBytes(this.opts.key) } : {}) };
    this.pool ??= new ChunkWorkerPool(init, this.opts.workers, path.join(__dirname, 'packWorker.js'));
    return this.pool;
  }

  get parallelism(): number {
    return this.workers().size;
  }

  /** @internal Quarantine: this copy of the blob is corrupt (verify). */
  markBad(loc: BlobLocation): void {
    this.bad.add(`${loc.pack}:${loc.offset}`);
  }

  isBad(loc: BlobLocation): boolean {
    return this.bad.has(`${loc.pack}:${loc.offset}`);
  }

  /** Usable locations of a blob: known, not marked bad, not quarantined. */
  locations(id: Buffer): BlobLocation[] {
    return this.index.find(id).filter((l) => !this.isBad(l) && !this.index.isQuarantined(id, l.pack));
  }

  /** Plain content of a blob, checked against its id; REPO_CORRUPT naming it otherwise. */
  async read(hex: string, length: number): Promise<Buffer> {
    const r = await this.load(hex, length, 'readAt');
    if (r.status !== 'ok' || !r.data) {
      throw new AppError('REPO_CORRUPT', r.message ?? `chunk ${hex} is ${r.status}`, { details: { chunk: hex, status: r.status, ...(r.location ? { pack: r.location.pack } : {}) } });
    }
    return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  }

  async check(hex: string, length: number): Promise<{ status: ChunkStatus; message?: string; location?: BlobLocation }> {
    const r = await this.load(hex, length, 'checkAt');
    return r;
  }

  /** Tries each location; if none is known or none can be read, reads the index files added
   *  since (a collection may have moved the blob to a new pack and removed the old one) and
   *  tries the locations it did not try yet. */
  private async load(hex: string, length: number, op: 'readAt' | 'checkAt'): Promise<ReadResult & { location?: BlobLocation }> {
    const id = Buffer.from(hex, 'hex');
    const tried = new Set<string>();
    let last: ReadResult & { location?: BlobLocation } = { status: 'missing', message: `chunk ${hex} is in no pack of the repository index` };
    for (let pass = 0; pass < 2; pass++) {
      if (pass === 1) await this.index.refresh();
      const locs = this.locations(id).filter((l) => !tried.has(`${l.pack}:${l.offset}`));
      for (const l of locs) tried.add(`${l.pack}:${l.offset}`);
      const r = await this.loadFrom(hex, length, op, locs);
      if (r.status === 'ok') return r;
      if (locs.length > 0) last = r;
    }
    if (tried.size === 0) {
      const quarantined = this.index.find(id).map((l) => l.pack);
      if (quarantined.length > 0) return { status: 'missing', message: `chunk ${hex}: its copy in pack ${quarantined.join(', ')} is quarantined as corrupt, and there is no other` };
    }
    return last;
  }

  private async loadFrom(hex: string, length: number, op: 'readAt' | 'checkAt', locs: readonly BlobLocation[]): Promise<ReadResult & { location?: BlobLocation }> {
    let last: ReadResult & { location?: BlobLocation } = { status: 'missing' };
    for (const loc of locs) {
      if (loc.plainLength !== length) {
        last = { status: 'corrupt', message: `chunk ${hex} holds ${loc.plainLength} bytes in pack ${loc.pack}, expected ${length}`, location: loc };
        continue;
      }
      const file = packPath(this.opts.root, loc.pack);
      const r = await this.workers().run<ReadResult>({ op, file, offset: loc.offset, storedLength: loc.storedLength, blob: hex, length }, `reading chunk ${hex}`);
      if (r.status === 'ok') return { ...r, location: loc };
      last = { ...r, location: loc };
    }
    return last;
  }

  /** A stored node's content (index trees). */
  readNode(id: Buffer, length: number): Promise<Buffer> {
    return this.read(id.toString('hex'), length);
  }

  /** A format-2 index: the root file, then its tree's nodes; a node that cannot be read makes
   *  the index corrupt (named with the node). */
  async decodeIndex(buf: Buffer, what: string): Promise<DiskIndex> {
    const root = parseRoot(buf, what);
    const { digests, nodes } = await readTree(root, async (id, length) => {
      try {
        return await this.readNode(id, length);
      } catch (err) {
        const cause = isAppError(err) ? err.details : undefined;
        const pack = typeof cause?.['pack'] === 'string' ? { pack: cause['pack'], status: cause['status'] } : {};
        throw new AppError('REPO_CORRUPT', `${what}: index node ${id.toString('hex')}: ${(err as Error).message}`, { cause: err, details: { kind: 'index-corrupt', node: id.toString('hex'), ...pack } });
      }
    });
    return new DiskIndex(root.virtualSize, root.chunkSize, digests, nodes);
  }

  session(tmpDir: string): PackSession {
    return new PackSession(this, tmpDir);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}

function keyBytes(key: RepoKey): Uint8Array {
  const out = new Uint8Array(64);
  out.set(key.encKey, 0);
  out.set(key.idKey, 32);
  return out;
}

/**
 * The blobs one point writer stores: appended to its own packs in its staging directory. A blob
 * already in the repository is not stored again; its pack's mtime is set to now first (once per
 * pack and session), which is what keeps the garbage collection from removing it under this
 * writer (FORMAT.md §20, the mtime protocol of §9/§14 applied to packs).
 */
export class PackSession {
  private builder: Promise<PackBuilder> | undefined;
  private readonly sealing: Array<Promise<SealedPack>> = [];
  /** Blobs stored by this session: id → done when appended. */
  private readonly mine = new Map<string, Promise<void>>();
  private readonly touched = new Map<string, Promise<boolean>>();
  private failure: unknown;

  constructor(
    private readonly store: PackStore,
    private readonly tmpDir: string,
  ) {}

  /** Zero check, id, and — unless already stored — compression and append. `data` may be
   *  detached on return (its memory comes back in `returned`). */
  async put(data: Buffer, what: string): Promise<PutResult> {
    const view = ownsBuffer(data) ? data : copyToOwn(data);
    const r = await this.store.workers().run<SealResult>({ op: 'seal', data: view }, what, [view.buffer as ArrayBuffer]);
    const returned = r.returned;
    if (r.zero) return { zero: true, ...(returned ? { returned } : {}) };
    const id = Buffer.from(r.id, 'hex');
    const stored = await this.store1(id, BlobType.Chunk, Buffer.from(r.stored.buffer, r.stored.byteOffset, r.stored.byteLength), r.plainLength);
    return { zero: false, digest: r.id, stored: stored > 0, bytes: stored, ...(returned ? { returned } : {}) };
  }

  /** Stores an index node (content made on the main thread); returns its id. */
  async putNode(content: Buffer): Promise<Buffer> {
    const id = this.store.codec.id(content);
    if (this.mine.has(key(id)) || (await this.reuse(id))) return id;
    await this.store1(id, BlobType.TreeNode, this.store.codec.encode(id, content), content.length);
    return id;
  }

  /** Returns the stored bytes this call added (0: already there). */
  private async store1(id: Buffer, type: BlobType, stored: Buffer, plainLength: number): Promise<number> {
    const k = key(id);
    const pending = this.mine.get(k);
    if (pending) {
      await pending;
      return 0;
    }
    if (await this.reuse(id)) return 0;
    if (this.mine.has(k)) return 0; // stored meanwhile by a concurrent put of the same content
    const appended = this.append(id, type, stored, plainLength);
    this.mine.set(k, appended.then(() => undefined));
    await appended;
    return stored.length;
  }

  /** Whether a stored copy can be relied on: its pack exists and got a fresh mtime. */
  private async reuse(id: Buffer): Promise<boolean> {
    for (const loc of this.store.locations(id)) {
      let t = this.touched.get(loc.pack);
      if (!t) {
        t = touch(packPath(this.store.root, loc.pack));
        this.touched.set(loc.pack, t);
      }
      if (await t) return true;
    }
    return false;
  }

  private async append(id: Buffer, type: BlobType, stored: Buffer, plainLength: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    let builder: PackBuilder;
    do {
      this.builder ??= PackBuilder.create(this.store.root, this.tmpDir);
      builder = await this.builder;
    } while (builder.closing); // filled up while we waited: the next one takes this blob
    const done = builder.append(id, type, stored, plainLength);
    if (builder.size >= this.store.packSize) {
      builder.closing = true;
      this.builder = undefined;
      this.sealing.push(done.then(() => builder.seal()));
    }
    try {
      await done;
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
  }

  /** Seals the open pack and makes every sealed pack findable with one index file: after this,
   *  every blob the session stored is durable and indexed. */
  async flush(): Promise<void> {
    if (this.failure !== undefined) throw new AppError('REPO_IO_ERROR', 'a blob could not be stored', { cause: this.failure });
    const open = this.builder;
    this.builder = undefined;
    if (open) {
      const b = await open;
      b.closing = true;
      if (b.count > 0) this.sealing.push(b.seal());
      else await b.discard();
    }
    const packs = await Promise.all(this.sealing.splice(0));
    if (packs.length === 0) return;
    await writeIndexFile(this.store.root, { packs: packs.map((p) => ({ name: p.name, entries: p.entries })), supersedes: [] });
    for (const p of packs) this.store.index.addPack(p.name, p.entries);
  }

  /** Drops the open pack (sealed ones stay as garbage for the collection). */
  async abort(): Promise<void> {
    const open = this.builder;
    this.builder = undefined;
    if (open) await (await open).discard().catch(() => undefined);
    await Promise.allSettled(this.sealing.splice(0));
  }
}

function key(id: Buffer): string {
  return id.toString('latin1');
}

/** Sets the pack's mtime to now; false if the pack is gone or is not this account's (then the
 *  writer stores its own copy rather than rely on a pack it could not protect). */
async function touch(file: string): Promise<boolean> {
  const now = new Date();
  try {
    await fs.utimes(file, now, now);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EPERM', 'EACCES', 'EROFS')) return false;
    throw isAppError(err) ? err : new AppError('REPO_IO_ERROR', `refreshing pack ${file} failed`, { cause: err });
  }
}

function ownsBuffer(b: Buffer): boolean {
  return b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.buffer.byteLength === b.byteLength;
}

function copyToOwn(b: Uint8Array): Buffer {
  const copy = Buffer.from(new ArrayBuffer(b.byteLength));
  copy.set(b);
  return copy;
}
