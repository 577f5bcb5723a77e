/**
 * The blob store of format 2 (FORMAT.md §17–§18): chunks and index nodes in pack files, found
 * through the repository index. Reading goes to the worker threads (pread, decrypt, decompress,
 * check); writing goes through a PackSession per point writer, which appends to its own packs
 * (one sequential file at a time, one fsync per pack) and, on flush, makes them findable with
 * one index file.
 */
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { BlobCodec } from './blobCodec';
import { blobCrypt } from './blobCrypt';
import type { ChunkReader } from './chunkReader';
import type { ChunkStatus, PackWorkerInit, ReadResult } from './chunkProtocol';
import { ChunkWorkerPool } from './chunkWorkers';
import { DiskIndex } from './diskIndex';
import { packPath } from './layout';
import { RepoIndex, type BlobLocation } from './repoIndex';
import { repoKeyBytes, type RepoKey } from './repoKey';
import { PackSession } from './packSession';
import { parseRoot, readTree } from './treeIndex';
import type { RepoMirror } from './store/mirror';

export interface PackStoreOptions {
  root: string;
  zstdLevel: number;
  packSize: number;
  key: RepoKey | null;
  workers?: number;
  /** A remote repository's mirror (FORMAT.md §24): packs are fetched before they are read,
   *  uploaded once published. Null for a local repository. */
  mirror?: RepoMirror | null;
}

export class PackStore implements ChunkReader {
  readonly index: RepoIndex;
  /** Main-thread codec, for index tree nodes (small, few). */
  readonly codec: BlobCodec;
  private pool: ChunkWorkerPool | undefined;
  /** Buffers readers handed back (recycle), by length: reused as the next reads' destination, so
   *  a restore does not allocate (and collect) a new buffer for every chunk. */
  private readonly spares = new Map<number, ArrayBuffer[]>();
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

  get mirror(): RepoMirror | null {
    return this.opts.mirror ?? null;
  }

  workers(): ChunkWorkerPool {
    const init: PackWorkerInit = { root: this.opts.root, zstdLevel: this.opts.zstdLevel, ...(this.opts.key ? { key: repoKeyBytes(this.opts.key) } : {}) };
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
      if (pass === 1) {
        await this.opts.mirror?.refreshIndex();
        await this.index.refresh();
      }
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
      // a remote repository's cache may not hold the pack (yet, or any more): fetched first
      await this.opts.mirror?.ensurePack(loc.pack);
      const into = op === 'readAt' ? this.spares.get(length)?.pop() : undefined;
      const req = { op, file, offset: loc.offset, storedLength: loc.storedLength, blob: hex, length, ...(into ? { into } : {}) };
      const r = await this.workers().run<ReadResult>(req, `reading chunk ${hex}`, into ? [into] : []);
      if (r.status === 'ok') return { ...r, location: loc };
      last = { ...r, location: loc };
    }
    return last;
  }

  /** Takes back a buffer read() returned, once the caller is done with it. */
  recycle(data: Buffer): void {
    const ab = data.buffer;
    if (data.byteOffset !== 0 || !(ab instanceof ArrayBuffer) || ab.byteLength !== data.length) return;
    let list = this.spares.get(ab.byteLength);
    if (!list) this.spares.set(ab.byteLength, (list = []));
    if (list.length < MAX_SPARES) list.push(ab);
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

  /** A writer's session; `lockedUntil`: the retention lock its point will be committed with
   *  (a remote repository sets Object Lock retention on its packs at upload). */
  session(tmpDir: string, lockedUntil: Date | null = null): PackSession {
    return new PackSession(this, tmpDir, lockedUntil);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}

/** Spare read buffers kept per size: the reads a restore has in flight, and some. */
const MAX_SPARES = 32;
