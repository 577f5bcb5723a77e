/**
 * A point writer's blobs in format 2 (FORMAT.md §17): each chunk is hashed by a worker, which
 * keeps it; the session looks the id up (its own blobs, then the repository index) and tells the
 * same worker to store it in its pack for this session or to drop it; flush makes the packs
 * durable and findable with one index file. Made by PackStore.session.
 */
import { promises as fs } from 'fs';
import { AppError, isAppError } from '../errors';
import { crashPoint } from '../util/crashPoint';
import { isErrno } from './atomicFile';
import type { BlobCodec } from './blobCodec';
import type { DropResult, FlushResult, HashResult, PackSessionRef, PutResult, SealedPackInfo, StoreResult } from './chunkProtocol';
import type { ChunkWorkerPool, WorkerHandle } from './chunkWorkers';
import { packPath } from './layout';
import { BlobType, publishPack, type PackEntry } from './pack';
import { writeIndexFile, type BlobLocation, type RepoIndex } from './repoIndex';
import { copyToOwn, ownsBuffer } from './workerShared';
import type { RepoMirror } from './store/mirror';

/** What a session needs from its store (PackStore). */
export interface SessionStore {
  readonly root: string;
  readonly packSize: number;
  readonly codec: BlobCodec;
  readonly index: RepoIndex;
  workers(): ChunkWorkerPool;
  locations(id: Buffer): BlobLocation[];
  /** A remote repository's mirror (FORMAT.md §24), else null. */
  readonly mirror: RepoMirror | null;
}

let sessionSeq = 0;


/**
 * The blobs one point writer stores. Each chunk is hashed by a worker, which keeps it; the main
 * thread looks the id up (this session's blobs, then the repository index) and tells the same
 * worker to store it in its pack for this session or to drop it. A blob already in the
 * repository is not stored again; its pack's mtime is set to now first (once per pack and
 * session), which keeps the garbage collection from removing it under this writer (FORMAT.md
 * §20, the mtime protocol of §9/§14 applied to packs).
 */
export class PackSession {
  private readonly ref: PackSessionRef;
  /** Blobs stored by this session: id → settled when the worker has appended it. */
  private readonly mine = new Map<string, Promise<void>>();
  private readonly touched = new Map<string, Promise<boolean>>();
  /** Workers holding an open pack of this session. */
  private readonly used = new Set<WorkerHandle>();
  /** Packs finished by workers, being made durable and renamed into packs/ (on libuv's pool,
   *  so that no worker waits for an fsync). */
  private readonly publishing: Array<Promise<SealedPackInfo>> = [];
  /** Packs published and not yet named by an index file. */
  private readonly unindexed: Array<{ name: string; entries: PackEntry[] }> = [];
  private flushing: Promise<void> = Promise.resolve();
  private aborted = false;
  private failure: unknown;

  constructor(
    private readonly store: SessionStore,
    tmpDir: string,
    /** Remote repository: the retention its packs get at upload (the point's lock). */
    private readonly lockedUntil: Date | null = null,
  ) {
    this.ref = { session: `${process.pid}-${++sessionSeq}`, root: store.root, tmpDir, packSize: store.packSize };
  }

  /** Zero check, id, and — unless already stored — compression and append. `data` may be
   *  detached on return (its memory comes back in `returned`). */
  async put(data: Buffer, what: string): Promise<PutResult> {
    this.checkOpen();
    const view = ownsBuffer(data) ? data : copyToOwn(data);
    const pool = this.store.workers();
    const { worker, result: h } = await pool.runPinned<HashResult>({ op: 'hash', data: view }, what, [view.buffer as ArrayBuffer]);
    if (h.zero) return { zero: true, ...(h.returned ? { returned: h.returned } : {}) };
    const id = Buffer.from(h.id, 'hex');
    let claim: Claim | undefined;
    try {
      claim = await this.claim(id);
    } catch (err) {
      // the worker holds the chunk until it is told what to do with it
      await pool.runOn(worker, { op: 'drop', token: h.token }, what).catch(() => undefined);
      throw err;
    }
    if (!claim) {
      const d = await pool.runOn<DropResult>(worker, { op: 'drop', token: h.token }, what);
      return { zero: false, digest: h.id, stored: false, bytes: 0, ...(d.returned ? { returned: d.returned } : {}) };
    }
    const r = await this.track(claim, worker, () => pool.runOn<StoreResult>(worker, { op: 'store', token: h.token, type: BlobType.Chunk, to: this.ref }, what));
    return { zero: false, digest: h.id, stored: true, bytes: r.storedLength, ...(r.returned ? { returned: r.returned } : {}) };
  }

  /** Stores an index node (content made on the main thread); returns its id. */
  async putNode(content: Buffer): Promise<Buffer> {
    this.checkOpen();
    const id = this.store.codec.id(content);
    const claim = await this.claim(id);
    if (!claim) return id;
    const pool = this.store.workers();
    let worker: WorkerHandle | undefined;
    await this.track(claim, undefined, async () => {
      const r = await pool.runPinned<StoreResult>({ op: 'storeBlob', data: content, type: BlobType.TreeNode, to: this.ref }, 'storing an index node');
      worker = r.worker;
      return r.result;
    });
    if (worker) this.used.add(worker);
    return id;
  }

  /**
   * Undefined when this session or the repository holds the blob already (a stored copy is
   * relied on only once its pack got a fresh mtime); otherwise this put's claim to store it, made
   * before any await so that a concurrent put of the same content waits for this one.
   */
  private async claim(id: Buffer): Promise<Claim | undefined> {
    const k = key(id);
    const pending = this.mine.get(k);
    if (pending) {
      await pending;
      return undefined;
    }
    const claim = new Claim();
    this.mine.set(k, claim.done);
    try {
      if (await this.reuse(id)) {
        claim.settle();
        return undefined;
      }
    } catch (err) {
      this.mine.delete(k);
      claim.settle(err);
      throw err;
    }
    return claim;
  }

  /** Runs the store of a claimed blob; a failure is remembered (the point cannot be committed). */
  private async track(claim: Claim, worker: WorkerHandle | undefined, store: () => Promise<StoreResult>): Promise<StoreResult> {
    if (worker) this.used.add(worker);
    try {
      const r = await store();
      if (r.sealed) this.publish(r.sealed);
      claim.settle();
      return r;
    } catch (err) {
      this.failure ??= err;
      claim.settle(err);
      throw err;
    }
  }

  private checkOpen(): void {
    if (this.aborted) throw new AppError('INVALID_ARGUMENT', 'the point writer was aborted: nothing more is stored');
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

  /** Seals the open packs and makes every sealed pack findable with one index file: after this,
   *  every blob the session stored is durable and indexed. Flushes run one after the other (each
   *  disk's index and the commit flush the same session). */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.doFlush());
    this.flushing = next.catch(() => undefined);
    return next;
  }

  private async doFlush(): Promise<void> {
    try {
      await Promise.all(this.mine.values());
      const pool = this.store.workers();
      const workers = [...this.used];
      const flushed = await Promise.allSettled(workers.map((w) => pool.runOn<FlushResult>(w, { op: 'flush', session: this.ref.session }, 'sealing a pack')));
      for (const [i, r] of flushed.entries()) {
        if (r.status === 'fulfilled') {
          this.used.delete(workers[i] as WorkerHandle);
          if (r.value.sealed) this.publish(r.value.sealed);
        } else this.failure ??= r.reason;
      }
      const published = await Promise.allSettled(this.publishing.splice(0));
      for (const r of published) {
        if (r.status === 'fulfilled') this.unindexed.push({ name: r.value.name, entries: r.value.entries.map(toEntry) });
        else this.failure ??= r.reason;
      }
      if (this.failure !== undefined) throw notStored(this.failure);
      if (this.unindexed.length === 0) return;
      const indexName = await writeIndexFile(this.store.root, { packs: this.unindexed, supersedes: [] });
      await crashPoint('index-written');
      // remote: every pack in the store before the index file naming them
      await this.store.mirror?.indexWritten(indexName);
      for (const p of this.unindexed.splice(0)) this.store.index.addPack(p.name, p.entries);
    } catch (err) {
      // sticky: a blob this session counted as stored may be in no durable, indexed pack
      this.failure ??= err;
      throw notStored(this.failure);
    }
  }

  private publish(p: SealedPackInfo): void {
    const done = publishPack(this.store.root, p).then(async () => {
      await crashPoint('pack-published');
      this.store.mirror?.packPublished(p.name, this.lockedUntil);
      return p;
    });
    done.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.publishing.push(done);
  }

  /** Drops the open packs (sealed ones stay as garbage for the collection). */
  async abort(): Promise<void> {
    this.aborted = true;
    await Promise.allSettled(this.mine.values());
    const pool = this.store.workers();
    await Promise.allSettled([...this.used].map((w) => pool.runOn(w, { op: 'end', session: this.ref.session }, 'dropping a pack')));
    await Promise.allSettled(this.publishing.splice(0));
    this.used.clear();
  }
}

/** A put's claim to store a blob: others putting the same content wait for `done`. */
class Claim {
  settle!: (err?: unknown) => void;
  readonly done: Promise<void>;
  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
    });
    this.done.catch(() => undefined); // awaited by others, or by flush; never unhandled
  }
}

function toEntry(e: SealedPackInfo['entries'][number]): PackEntry {
  return { id: Buffer.from(e.id, 'hex'), type: e.type as BlobType, offset: e.offset, storedLength: e.storedLength, plainLength: e.plainLength };
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

/** A lost writer lease (remote, FORMAT.md §24) is said as it is: the operator's next step
 *  differs from that of a disk error. */
function notStored(failure: unknown): AppError {
  if (isAppError(failure, 'STORE_WRITER_ACTIVE')) return failure;
  return new AppError('REPO_IO_ERROR', 'a blob could not be stored', { cause: failure });
}
