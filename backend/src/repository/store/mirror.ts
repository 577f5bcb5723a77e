/**
 * The writer's mirror of a remote repository (FORMAT.md §24): the repository logic writes the
 * local cache directory exactly as for a local repository and calls this object at its commit
 * points, which puts the same files under the same relative keys into the object store in an
 * order that never lets a reader of the store see half a point — packs (queued, ≤4 in flight),
 * then the index file naming them, then a point's disk indexes, then its manifest last. Object
 * Lock retention is set at upload on what a locked point writes and extended on what it reuses.
 * Deletions go manifest first; a store refusal under Object Lock is "still locked", reported by
 * the caller, never an error. A reader's mirror (mode 'reader') only fetches packs (packFetch).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../errors';
import { crashPoint } from '../../util/crashPoint';
import { INDEX_DIR, KEYS_DIR, MANIFEST_FILE, POINTS_DIR } from '../layout';
import type { DeleteResult, ObjectStore, Retention } from './objectStore';
import { PackFetcher, packKey } from './packFetch';
import { syncIndexFiles } from './sync';

/** Uploads of packs in flight at once (the store itself goes multipart within one). */
const UPLOADS_IN_FLIGHT = 4;

export interface MirrorOptions {
  /** The cache directory (a format-2 repository directory). */
  root: string;
  store: ObjectStore;
  mode: 'writer' | 'reader';
  /** Object Lock mode of retention the writer sets. */
  lockMode: 'compliance' | 'governance';
  /** Keep pack files in the cache after upload (false: an empty placeholder stays). */
  keepPacks: boolean;
  /** A reader opened on a writer's cache: it adds to the cache, never removes from it. */
  sharedCache?: boolean;
  /** The writer lease's state: why it was lost, if it was (then nothing more is written). */
  leaseLost?: () => AppError | undefined;
  /** The store was opened with BypassGovernanceRetention (the operator's audited path). */
  bypassGovernance?: boolean;
}

/** @internal How open.ts attaches a remote repository's cache to its store (Repository.openAttached). */
export interface RemoteAttachment {
  mirror: RepoMirror;
  /** Called by Repository.close, after its own work: releases the writer lease, closes the store. */
  close(): Promise<void>;
}

/** Which packs a point's blobs are in (all known copies), resolved by the caller's store. */
export type PackResolver = () => Promise<Set<string>>;

export class RepoMirror {
  readonly store: ObjectStore;
  readonly mode: 'writer' | 'reader';
  readonly lockMode: 'compliance' | 'governance';
  readonly bypassGovernance: boolean;
  readonly fetcher: PackFetcher;
  private readonly root: string;
  private readonly keepPacks: boolean;
  private readonly sharedCache: boolean;
  private readonly leaseLost: () => AppError | undefined;
  private readonly uploading = new Set<Promise<void>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  /** The first upload failure since the last barrier: the next barrier throws it. */
  private failure: AppError | undefined;
  /** Packs this writer uploaded with retention, and until when: a commit needs no retention
   *  call for them (FORMAT.md §24: set at upload, never later). */
  private readonly lockedAtUpload = new Map<string, number>();

  constructor(opts: MirrorOptions) {
    this.root = opts.root;
    this.store = opts.store;
    this.mode = opts.mode;
    this.lockMode = opts.lockMode;
    this.bypassGovernance = opts.bypassGovernance === true;
    this.keepPacks = opts.keepPacks;
    this.sharedCache = opts.sharedCache === true;
    this.leaseLost = opts.leaseLost ?? (() => undefined);
    this.fetcher = new PackFetcher(opts.root, opts.store);
  }

  get location(): string {
    return this.store.location;
  }

  retention(until: Date | null): Retention | undefined {
    return until && until.getTime() > Date.now() ? { mode: this.lockMode, until } : undefined;
  }

  private requireWriter(what: string): void {
    if (this.mode !== 'writer') throw new AppError('STORE_READ_ONLY', `${what}: repository ${this.store.location} is opened as a reader`);
    const lost = this.leaseLost();
    if (lost) throw new AppError('STORE_WRITER_ACTIVE', `${what}: this process lost the writer lease of ${this.store.location}: ${lost.message}`, { cause: lost });
  }

  /** A reader that misses a blob: the store's index files as they are now (a collection may
   *  have moved the blob to a new pack since this cache was synced). A writer's cache is the
   *  store's already. */
  async refreshIndex(): Promise<void> {
    if (this.mode === 'reader') await syncIndexFiles(this.store, this.root, !this.sharedCache);
  }

  /** Makes sure a pack can be read from the cache (downloads it when absent or evicted). */
  ensurePack(name: string): Promise<void> {
    return this.fetcher.ensure(name);
  }

  /** Pack published in the cache (pack.ts publishPack): its upload is queued. With `until`,
   *  it gets Object Lock retention at upload (a point committed locked relies on it). */
  packPublished(name: string, until: Date | null): void {
    this.requireWriter(`uploading pack ${name}`);
    const job = this.slot().then(async () => {
      try {
        this.requireWriter(`uploading pack ${name}`);
        const file = this.fetcher.localPath(name);
        const retention = this.retention(until);
        await this.store.put(packKey(name), { file }, retention ? { retention } : {});
        if (retention) this.lockedAtUpload.set(name, retention.until.getTime());
        await crashPoint('pack-uploaded');
        if (!this.keepPacks) await this.fetcher.evict(name);
      } finally {
        this.release();
      }
    });
    const tracked = job.catch((err: unknown) => {
      this.failure ??= new AppError('STORE_UNAVAILABLE', `uploading pack ${name} to ${this.store.location} failed: ${(err as Error).message}`, { cause: err });
    });
    this.uploading.add(tracked);
    void tracked.finally(() => this.uploading.delete(tracked));
  }

  private async slot(): Promise<void> {
    if (this.running < UPLOADS_IN_FLIGHT) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }

  /** Waits for every queued pack upload; throws the first failure (and forgets it). */
  async packsUploaded(): Promise<void> {
    while (this.uploading.size > 0) await Promise.all([...this.uploading]);
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** An index file was written in the cache: every pack it may name is in the store first. */
  async indexWritten(name: string): Promise<void> {
    this.requireWriter(`uploading index file ${name}`);
    await this.packsUploaded();
    await this.store.put(`${INDEX_DIR}/${name}`, { file: path.join(this.root, INDEX_DIR, name) });
    await crashPoint('index-uploaded');
  }

  /** Removes superseded index files from the store (after their successor is there). */
  async indexesDropped(names: readonly string[]): Promise<void> {
    this.requireWriter('removing index files');
    for (const n of names) {
      this.requireWriter('removing index files');
      await this.store.delete(`${INDEX_DIR}/${n}`);
    }
  }

  /**
   * A point is committed (called before the local rename of staging → points/): its files
   * except the manifest, then — for a locked point — the retention of every pack it references
   * lengthened to its lock, then the manifest, the object whose presence makes the point.
   */
  async commitPoint(p: { pointId: string; dir: string; lockedUntil: Date | null; packs: PackResolver }): Promise<void> {
    this.requireWriter(`committing point ${p.pointId}`);
    await this.packsUploaded();
    const retention = this.retention(p.lockedUntil);
    const files = (await fs.readdir(p.dir)).filter((f) => f !== MANIFEST_FILE && !f.startsWith('.'));
    for (const f of files.sort()) {
      const st = await fs.stat(path.join(p.dir, f));
      if (!st.isFile()) continue;
      this.requireWriter(`committing point ${p.pointId}`);
      await this.store.put(pointKey(p.pointId, f), { file: path.join(p.dir, f) }, retention ? { retention } : {});
    }
    await crashPoint('point-files-uploaded');
    if (retention) await this.extendPacks(await p.packs(), retention);
    // the manifest makes the point: never from a writer that may have been taken over
    this.requireWriter(`committing point ${p.pointId}`);
    await this.store.put(pointKey(p.pointId, MANIFEST_FILE), { file: path.join(p.dir, MANIFEST_FILE) }, retention ? { retention } : {});
    await crashPoint('manifest-uploaded');
  }

  /** Whether the point's manifest is in the store (a commit whose reply was lost may have made
   *  it there: then the point is committed). */
  async pointInStore(pointId: string): Promise<boolean> {
    return (await this.store.head(pointKey(pointId, MANIFEST_FILE))) !== null;
  }

  /** The point's lock changed (retention.ts): its files and packs get the new retention (only
   *  ever lengthened), then the new manifest goes up as the key's next version. */
  async manifestRewritten(p: { pointId: string; dir: string; lockedUntil: Date | null; packs: PackResolver }): Promise<void> {
    this.requireWriter(`updating point ${p.pointId}`);
    const retention = this.retention(p.lockedUntil);
    if (retention) {
      await this.extendPacks(await p.packs(), retention);
      for (const f of await fs.readdir(p.dir)) {
        if (f === MANIFEST_FILE || f.startsWith('.')) continue;
        await this.store.extendRetention(pointKey(p.pointId, f), retention);
      }
    }
    this.requireWriter(`updating point ${p.pointId}`);
    await this.store.put(pointKey(p.pointId, MANIFEST_FILE), { file: path.join(p.dir, MANIFEST_FILE) }, retention ? { retention } : {});
  }

  /** Packs a locked point refers to get its retention; those uploaded with it (or longer) by
   *  this writer already have it and are left alone. */
  private async extendPacks(packs: ReadonlySet<string>, retention: Retention): Promise<void> {
    const names = [...packs].filter((n) => (this.lockedAtUpload.get(n) ?? 0) < retention.until.getTime());
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < names.length) await this.store.extendRetention(packKey(names[next++] as string), retention);
    };
    await Promise.all(Array.from({ length: Math.min(UPLOADS_IN_FLIGHT, names.length) }, lane));
  }

  /**
   * Deletes a point from the store: first the retention of every version of every key of the
   * point is read — any still running (even under a newer unlocked manifest version, after
   * `points unlock`) and nothing is deleted: `locked` with the latest date, the point stays whole
   * in the store and the caller keeps it locally too. Otherwise manifest first (from then on no
   * reader sees it), then the rest; a key the store still refuses (a retention set meanwhile) or
   * a failure is an error, never a silently half-deleted point.
   */
  async deletePoint(pointId: string): Promise<{ state: 'deleted' } | { state: 'locked'; until?: Date; mode?: Retention['mode'] }> {
    this.requireWriter(`deleting point ${pointId}`);
    const manifest = pointKey(pointId, MANIFEST_FILE);
    const keys = new Set<string>([manifest]);
    for await (const o of this.store.list(`${POINTS_DIR}/${pointId}/`)) keys.add(o.key);
    let held: Retention | null = null;
    for (const key of keys) {
      const r = await this.store.lockedUntil(key);
      if (r && (!held || r.until > held.until)) held = r;
    }
    if (held) return { state: 'locked', until: held.until, mode: held.mode };
    const first = await this.store.delete(manifest);
    if (first.state === 'locked') return lockedOf(first);
    this.requireWriter(`deleting point ${pointId}`);
    for (const key of keys) {
      if (key === manifest) continue;
      this.requireWriter(`deleting point ${pointId}`);
      const r = await this.store.delete(key);
      if (r.state === 'locked') {
        throw new AppError('STORE_OBJECT_LOCKED', `deleting point ${pointId}: ${key} in ${this.store.location} is under Object Lock retention${r.until ? ` until ${r.until.toISOString()}` : ''} although none ran a moment ago; its manifest is gone, delete it again after that date`);
      }
    }
    return { state: 'deleted' };
  }

  /** A pack the collection removed locally: removed from the store too (or refused: locked). */
  async deletePack(name: string): Promise<DeleteResult> {
    this.requireWriter(`deleting pack ${name}`);
    return this.store.delete(packKey(name));
  }

  /** Multipart uploads cut mid-way before `before`, aborted (the collection's sweep). */
  async abortStaleUploads(before: Date): Promise<number> {
    this.requireWriter('aborting unfinished uploads');
    return this.store.abortStaleUploads(before);
  }

  /** When the pack's retention in the store ends, if it has not yet ended. */
  async retentionOf(name: string): Promise<Date | null> {
    const h = await this.store.head(packKey(name));
    const until = h?.retention?.until;
    return until && until.getTime() > Date.now() ? until : null;
  }

  /** Uploads a file of the cache under its relative path (init: keys, then config.json). */
  async putFile(rel: string): Promise<void> {
    this.requireWriter(`uploading ${rel}`);
    await this.store.put(rel.split(path.sep).join('/'), { file: path.join(this.root, rel) });
  }

  /** keys/ of the store made what the cache has: new and rewrapped key files first, then the
   *  removed ones deleted (the store never holds no working key meanwhile). */
  async publishKeys(): Promise<void> {
    this.requireWriter('publishing key files');
    const dir = path.join(this.root, KEYS_DIR);
    const local = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
    for (const f of local.sort()) await this.store.put(`${KEYS_DIR}/${f}`, { file: path.join(dir, f) });
    const keep = new Set(local.map((f) => `${KEYS_DIR}/${f}`));
    const gone: string[] = [];
    for await (const o of this.store.list(`${KEYS_DIR}/`)) if (!keep.has(o.key)) gone.push(o.key);
    for (const k of gone) {
      this.requireWriter('publishing key files');
      await this.store.delete(k);
    }
  }

  /** Waits for uploads still queued (their failure is dropped: nothing refers to those packs). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.uploading]);
    this.failure = undefined;
  }
}

function pointKey(pointId: string, file: string): string {
  return `${POINTS_DIR}/${pointId}/${file}`;
}

function lockedOf(r: DeleteResult & { state: 'locked' }): { state: 'locked'; until?: Date; mode?: Retention['mode'] } {
  return { state: 'locked', ...(r.until ? { until: r.until } : {}), ...(r.mode ? { mode: r.mode } : {}) };
}
