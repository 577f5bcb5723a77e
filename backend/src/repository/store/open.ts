/**
 * Opening and creating a repository wherever it is (FORMAT.md §24): a local directory, or an
 * object store (S3) with a local cache directory. The one entry point the CLI and the service
 * use. A remote repository opens as a writer (the single writer lease, Object Lock required by
 * default, the cache synced from the store, then every commit mirrored) or as a reader (the
 * cache synced; packs fetched on demand; nothing is ever written to the store).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../errors';
import { writeFileAtomic } from '../atomicFile';
import { CONFIG_FILE, KEYS_DIR } from '../layout';
import { Repository, type InitOptions, type RepositoryOptions } from '../repository';
import { RepoMirror } from './mirror';
import type { ObjectStore } from './objectStore';
import type { S3Config } from './s3Config';
import { createBucket } from './s3Bucket';
import { openStore, parseS3Url } from './stores';
import { syncFromStore } from './sync';
import { WriterLease, type LeaseTiming } from './writerLease';

export type RepoSpec = { kind: 'local'; dir: string } | { kind: 's3'; s3: S3Config; cacheDir: string };

export interface RemoteRepoOptions extends RepositoryOptions {
  /** Remote only: 'writer' (default) takes the writer lease; 'reader' never writes to the store. */
  mode?: 'writer' | 'reader';
  /** Who writes, for the writer lease (default `olvm-backup`). */
  holder?: string;
  /** A writer refuses a bucket without Object Lock (STORE_NO_OBJECT_LOCK). Default true. */
  requireObjectLock?: boolean;
  /** The Object Lock mode of the retention a writer sets. Default compliance. */
  objectLockMode?: 'compliance' | 'governance';
  /** Keep packs in the cache after upload. Default false: the cache holds metadata only. */
  keepPacks?: boolean;
  /** Delete governance-locked versions (BypassGovernanceRetention): the operator CLI's
   *  `points unlock` path only, never the service. Compliance retention refuses regardless. */
  bypassGovernance?: boolean;
  /** The writer lease's intervals (tests: short ones); defaults 20 s heartbeat, 90 s stale. */
  leaseTiming?: Partial<LeaseTiming>;
}

export type RemoteInitOptions = InitOptions & RemoteRepoOptions & { objectLock?: 'compliance' | 'governance' | 'off' };

/** In the cache directory: which store it caches (no credentials). */
export const REMOTE_FILE = 'remote.json';

interface RemoteRecord {
  format: 'olvm-backup-remote';
  version: 1;
  location: string;
  /** A writer has used this cache: readers opening it too never remove anything from it. */
  writerCache?: boolean;
}

/** `s3://BUCKET/PREFIX` or a local directory. INVALID_ARGUMENT for a malformed s3 URL. */
export function parseRepoLocation(s: string): { kind: 'local'; dir: string } | { kind: 's3'; bucket: string; prefix: string } {
  const url = parseS3Url(s);
  if (url) return { kind: 's3', bucket: url.bucket, prefix: url.prefix };
  if (typeof s !== 'string' || s === '') throw new AppError('INVALID_ARGUMENT', 'a repository location is required (a directory or s3://BUCKET/PREFIX)');
  return { kind: 'local', dir: s };
}

/** Opens a repository. Local: Repository.open. S3: see openRepoOnStore. */
export async function openRepo(spec: RepoSpec, opts: RemoteRepoOptions = {}): Promise<Repository> {
  if (spec.kind === 'local') return Repository.open(spec.dir, opts);
  const writer = (opts.mode ?? 'writer') === 'writer';
  const store = await openStore({ kind: 's3', s3: spec.s3, requireObjectLock: writer && opts.requireObjectLock !== false, options: { bypassGovernance: writer && opts.bypassGovernance === true } });
  return openRepoOnStore(store, spec.cacheDir, opts);
}

/** Creates a repository. S3: the bucket is created with Object Lock when missing (`objectLock`,
 *  default compliance; `off` creates it without, which a writer then refuses unless
 *  requireObjectLock is false). REPO_EXISTS when the prefix holds a repository already. */
export async function initRepo(spec: RepoSpec, opts: RemoteInitOptions = {}): Promise<Repository> {
  if (spec.kind === 'local') {
    return Repository.init(spec.dir, withoutRemote(opts));
  }
  // created with Object Lock unless `off` (Ceph cannot add it later); an existing bucket of ours is fine
  await createBucket(spec.s3, opts.objectLock ?? 'compliance');
  const store = await openStore({ kind: 's3', s3: spec.s3, requireObjectLock: opts.requireObjectLock !== false });
  const objectLockMode = opts.objectLockMode ?? (opts.objectLock === 'governance' ? 'governance' : 'compliance');
  return initRepoOnStore(store, spec.cacheDir, { ...opts, objectLockMode });
}

/**
 * A repository on an open store with its cache in `cacheDir` (created if needed). The store is
 * the caller's until this returns; from then on the repository closes it. Writer: Object Lock
 * checked (unless requireObjectLock false), the writer lease taken (STORE_WRITER_ACTIVE naming
 * the holder), the cache synced (repairing a commit cut between the store's manifest and the
 * local rename), then every change mirrored. Reader: the cache synced, nothing written to the store.
 */
export async function openRepoOnStore(store: ObjectStore, cacheDir: string, opts: RemoteRepoOptions = {}): Promise<Repository> {
  const mode = opts.mode ?? 'writer';
  const root = path.resolve(cacheDir);
  let lease: WriterLease | undefined;
  try {
    const cache = await claimCache(root, store.location, false, mode === 'writer');
    if (mode === 'writer') {
      if (opts.requireObjectLock !== false && !(await store.bucketLock()).enabled) {
        throw new AppError('STORE_NO_OBJECT_LOCK', `${store.location} has no Object Lock: a writer refuses it (protection.requireObjectLock; create the bucket with Object Lock, or set requireObjectLock false to rely on the repository's own locks only)`);
      }
      lease = await WriterLease.acquire(store, opts.holder ?? 'olvm-backup', opts.leaseTiming);
    }
    const mirror = new RepoMirror({ root, store, mode, lockMode: opts.objectLockMode ?? 'compliance', keepPacks: opts.keepPacks === true, sharedCache: mode === 'reader' && cache.writerCache === true, bypassGovernance: mode === 'writer' && opts.bypassGovernance === true, ...(lease ? { leaseLost: leaseCheck(lease) } : {}) });
    // a reader sharing a writer's cache (the CLI beside the service) only adds to it: the
    // writer's own files may be ahead of the store for a moment (an index file before its upload)
    await syncFromStore(store, root, { fetcher: mirror.fetcher, placeholders: mode === 'writer', drop: mode === 'writer' || !cache.writerCache });
    const held = lease;
    const repo = await Repository.openAttached(root, repoOptions(opts), {
      mirror,
      close: async () => {
        try {
          await mirror.drain();
          await held?.release();
        } finally {
          await store.close();
        }
      },
    });
    return repo;
  } catch (err) {
    await lease?.release().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** Creates the repository in the store (keys first, config.json last) through a fresh cache
 *  directory, then opens it as its writer. */
export async function initRepoOnStore(store: ObjectStore, cacheDir: string, opts: RemoteInitOptions = {}): Promise<Repository> {
  const root = path.resolve(cacheDir);
  try {
    if ((await store.head(CONFIG_FILE)) !== null) throw new AppError('REPO_EXISTS', `${store.location} is already a repository`);
    if (opts.requireObjectLock !== false && !(await store.bucketLock()).enabled) {
      throw new AppError('STORE_NO_OBJECT_LOCK', `${store.location} has no Object Lock: refusing to create a protected repository there (requireObjectLock false to allow it)`);
    }
    const init: InitOptions = withoutRemote(opts);
    if (init.version === 1) throw new AppError('INVALID_ARGUMENT', 'only a format-2 repository can be remote');
    const local = await Repository.init(root, { ...init, version: 2 });
    await local.close();
    await claimCache(root, store.location, true, true);
    for (const f of (await fs.readdir(path.join(root, KEYS_DIR)).catch(() => [])).sort()) {
      if (f.endsWith('.json')) await store.put(`${KEYS_DIR}/${f}`, { file: path.join(root, KEYS_DIR, f) });
    }
    // config.json last: its presence in the store is what makes the repository
    const put = await store.put(CONFIG_FILE, { file: path.join(root, CONFIG_FILE) }, { ifAbsent: true, contentType: 'application/json' });
    if (!put.created) throw new AppError('REPO_EXISTS', `${store.location} became a repository meanwhile (another init)`);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return openRepoOnStore(store, root, opts);
}

const REMOTE_OPTIONS = ['objectLock', 'mode', 'holder', 'requireObjectLock', 'objectLockMode', 'keepPacks', 'bypassGovernance', 'leaseTiming'] as const;

/** The options without the remote ones (what Repository.init/open take). */
function withoutRemote<T extends RemoteInitOptions>(opts: T): Omit<T, (typeof REMOTE_OPTIONS)[number]> {
  const rest = { ...opts } as Record<string, unknown>;
  for (const k of REMOTE_OPTIONS) delete rest[k];
  return rest as Omit<T, (typeof REMOTE_OPTIONS)[number]>;
}

function repoOptions(opts: RemoteRepoOptions): RepositoryOptions {
  return withoutRemote(opts);
}

function leaseCheck(lease: WriterLease): () => AppError | undefined {
  return () => lease.lostReason;
}

/** The cache directory caches this store and nothing else: a fresh or empty directory is
 *  claimed; a local repository or another store's cache is refused. A writer marks it as a
 *  writer's cache. */
async function claimCache(root: string, location: string, initialized: boolean, writer: boolean): Promise<RemoteRecord> {
  await fs.mkdir(root, { recursive: true });
  const file = path.join(root, REMOTE_FILE);
  const cur = await fs.readFile(file, 'utf8').catch(() => null);
  let rec: RemoteRecord = { format: 'olvm-backup-remote', version: 1, location };
  if (cur !== null) {
    let found: Partial<RemoteRecord> = {};
    try {
      found = JSON.parse(cur) as Partial<RemoteRecord>;
    } catch {
      // unreadable: refused below
    }
    if (found.location !== location) throw new AppError('REPO_INVALID', `${root} is the cache of ${String(found.location)}, not of ${location}`);
    if (found.writerCache === true || !writer) return { ...rec, ...(found.writerCache === true ? { writerCache: true } : {}) };
  } else {
    const entries = await fs.readdir(root);
    if (entries.includes(CONFIG_FILE) && !initialized) throw new AppError('REPO_INVALID', `${root} is a local repository, not the cache of ${location}`);
  }
  if (writer) rec = { ...rec, writerCache: true };
  await writeFileAtomic(file, Buffer.from(JSON.stringify(rec, null, 2) + '\n'));
  return rec;
}
