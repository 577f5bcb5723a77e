/**
 * Bringing a remote repository's cache directory up to the store (FORMAT.md §24), at every open:
 * config.json, keys/, index/ and the complete points (those whose manifest is in the store) are
 * copied in; index files and points the store no longer has are dropped from the cache. A point
 * appears in the cache whole (its files are fetched into a staging directory renamed into
 * points/), as a local writer's do. Packs are not copied: a read fetches the pack it needs; a
 * writer's cache gets an empty placeholder per pack (packFetch.ts) so that it deduplicates
 * against them. Only reads the store. Several processes may sync one cache (two CLI readers on
 * the default cache, a reader on the writer's cache): a sync holds `locks/cache-sync.lock`,
 * stages under a name of its own, never rewrites a point's files in a cache it shares with a
 * writer, and never moves in a point a writer of this cache is committing (its VM lock names it).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../../errors';
import { isErrno, readdirOrEmpty, writeFileAtomic } from '../atomicFile';
import { randomBytes } from 'crypto';
import { CONFIG_FILE, INDEX_DIR, isHexDigest, KEYS_DIR, LAYOUT_DIRS_V2, LOCKS_DIR, MANIFEST_FILE, PACKS_DIR, POINTS_DIR, TMP_DIR } from '../layout';
import { acquireRepoLock, liveVmLocks } from '../locks';
import { isPointId } from '../pointId';
import type { ObjectInfo, ObjectStore } from './objectStore';
import type { PackFetcher } from './packFetch';

/** Where a sync stages the points it fetches (a name no VM key can take), per process. */
const SYNC_STAGING = '.sync';
/** One sync of a cache at a time; a sync of a big repository takes a while. */
const SYNC_LOCK_FILE = 'cache-sync.lock';
const SYNC_LOCK_WAIT_MS = 120_000;

export interface SyncReport {
  pointsFetched: number;
  pointsDropped: number;
  indexFilesFetched: number;
  indexFilesDropped: number;
  placeholders: number;
}

async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

/** Same second (S3 dates objects to the second). */
function sameTime(a: Date, b: Date): boolean {
  return Math.floor(a.getTime() / 1000) === Math.floor(b.getTime() / 1000);
}

async function statOrNull(file: string): Promise<import('fs').Stats | null> {
  try {
    return await fs.stat(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw new AppError('REPO_IO_ERROR', `stat ${file} failed`, { cause: err });
  }
}

/** Downloads `key` into `file` unless a file of the same size and date is there; dated as the store dates it. */
async function fetchFile(store: ObjectStore, o: ObjectInfo, file: string, always = false): Promise<boolean> {
  const st = await statOrNull(file);
  if (!always && st && st.size === o.size && sameTime(st.mtime, o.modified)) return false;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await store.download(o.key, file);
  await fs.utimes(file, o.modified, o.modified);
  return true;
}

/** The cache's config.json from the store's; REPO_NOT_FOUND when the store has none. */
export async function syncConfig(store: ObjectStore, root: string): Promise<void> {
  let buf: Buffer;
  try {
    buf = await store.get(CONFIG_FILE);
  } catch (err) {
    if (isAppError(err, 'STORE_NOT_FOUND')) throw new AppError('REPO_NOT_FOUND', `${store.location} is not a repository (no ${CONFIG_FILE})`, { cause: err });
    throw err;
  }
  for (const d of LAYOUT_DIRS_V2) await fs.mkdir(path.join(root, d), { recursive: true });
  const cur = await fs.readFile(path.join(root, CONFIG_FILE)).catch(() => null);
  if (!cur || !cur.equals(buf)) await writeFileAtomic(path.join(root, CONFIG_FILE), buf);
}

/** index/ of the cache made the store's: immutable files named by their hash, fetched when
 *  missing; files the store no longer has (a collection superseded them) dropped. */
export async function syncIndexFiles(store: ObjectStore, root: string, drop = true): Promise<{ fetched: number; dropped: number }> {
  const out = { fetched: 0, dropped: 0 };
  const index = (await listAll(store, `${INDEX_DIR}/`)).filter((o) => isHexDigest(o.key.slice(INDEX_DIR.length + 1)));
  const indexNames = new Set(index.map((o) => o.key.slice(INDEX_DIR.length + 1)));
  await fs.mkdir(path.join(root, INDEX_DIR), { recursive: true });
  for (const o of index) {
    const file = path.join(root, INDEX_DIR, o.key.slice(INDEX_DIR.length + 1));
    if ((await statOrNull(file))?.size === o.size) continue;
    await fetchFile(store, o, file, true);
    out.fetched++;
  }
  for (const f of drop ? await readdirOrEmpty(path.join(root, INDEX_DIR)) : []) {
    if (isHexDigest(f) && !indexNames.has(f)) {
      await fs.rm(path.join(root, INDEX_DIR, f), { force: true });
      out.dropped++;
    }
  }
  return out;
}

/** Copies config, keys, index files and complete points from the store into `root`, under the
 *  cache's sync lock (REPO_LOCKED naming the holder after 2 min of waiting). `drop` false: the
 *  cache is shared with a writer (only added to). */
export async function syncFromStore(store: ObjectStore, root: string, opts: { fetcher: PackFetcher; placeholders: boolean; drop: boolean }): Promise<SyncReport> {
  await syncConfig(store, root);
  const lock = await acquireRepoLock(path.join(root, LOCKS_DIR, SYNC_LOCK_FILE), 'cache-sync', { waitMs: SYNC_LOCK_WAIT_MS });
  try {
    return await syncLocked(store, root, opts);
  } finally {
    await lock.release();
  }
}

async function syncLocked(store: ObjectStore, root: string, opts: { fetcher: PackFetcher; placeholders: boolean; drop: boolean }): Promise<SyncReport> {
  const report: SyncReport = { pointsFetched: 0, pointsDropped: 0, indexFilesFetched: 0, indexFilesDropped: 0, placeholders: 0 };

  // keys/: the store's set (key files are small; a changed one is fetched again)
  const keys = (await listAll(store, `${KEYS_DIR}/`)).filter((o) => /^keys\/[^/]+\.json$/.test(o.key));
  if (keys.length > 0) await fs.mkdir(path.join(root, KEYS_DIR), { recursive: true, mode: 0o700 });
  for (const o of keys) {
    const file = path.join(root, ...o.key.split('/'));
    // key files are the repository account's only (FORMAT.md §21)
    if (await fetchFile(store, o, file)) await fs.chmod(file, 0o600);
  }
  const keyNames = new Set(keys.map((o) => o.key.slice(KEYS_DIR.length + 1)));
  if (opts.drop) for (const f of await readdirOrEmpty(path.join(root, KEYS_DIR))) if (f.endsWith('.json') && !keyNames.has(f)) await fs.rm(path.join(root, KEYS_DIR, f), { force: true });

  const idx = await syncIndexFiles(store, root, opts.drop);
  report.indexFilesFetched = idx.fetched;
  report.indexFilesDropped = idx.dropped;

  // points/: complete ones only (manifest present), fetched whole
  const byPoint = new Map<string, ObjectInfo[]>();
  for (const o of await listAll(store, `${POINTS_DIR}/`)) {
    const [, id, file, ...more] = o.key.split('/');
    if (!id || !file || more.length > 0 || !isPointId(id) || file.startsWith('.')) continue;
    const list = byPoint.get(id);
    if (list) list.push(o);
    else byPoint.set(id, [o]);
  }
  const complete = new Map([...byPoint].filter(([, files]) => files.some((o) => o.key.endsWith(`/${MANIFEST_FILE}`))));
  const staging = path.join(root, TMP_DIR, `${SYNC_STAGING}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const [id, files] of complete) {
      const dir = path.join(root, POINTS_DIR, id);
      if (await statOrNull(path.join(dir, MANIFEST_FILE))) {
        // present: a manifest rewritten since (a lock extended) is fetched again — not in a
        // writer's cache, whose files may be a moment ahead of the store
        if (opts.drop) for (const o of files) await fetchFile(store, o, path.join(dir, path.basename(o.key)));
        continue;
      }
      // a writer of this cache committing it renames it into points/ itself
      if (await committing(root, id)) continue;
      const tmp = path.join(staging, id);
      await fs.mkdir(tmp, { recursive: true });
      for (const o of files) await fetchFile(store, o, path.join(tmp, path.basename(o.key)), true);
      if (await committing(root, id)) continue;
      try {
        // an own cache: a leftover without manifest is replaced; a shared one: never over a
        // point that is there meanwhile (rename onto a non-empty directory fails)
        if (opts.drop) await fs.rm(dir, { recursive: true, force: true });
        else
          await fs.rmdir(dir).catch((err: unknown) => {
            if (!isErrno(err, 'ENOENT')) throw err;
          });
        await fs.rename(tmp, dir);
        report.pointsFetched++;
      } catch (err) {
        if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw new AppError('REPO_IO_ERROR', `moving fetched point ${id} into ${POINTS_DIR}/ failed`, { cause: err });
      }
    }
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  for (const id of opts.drop ? await readdirOrEmpty(path.join(root, POINTS_DIR)) : []) {
    if (isPointId(id) && !complete.has(id)) {
      await fs.rm(path.join(root, POINTS_DIR, id), { recursive: true, force: true });
      report.pointsDropped++;
    }
  }

  if (opts.placeholders) {
    for (const o of await listAll(store, `${PACKS_DIR}/`)) {
      const name = path.basename(o.key);
      if (!isHexDigest(name) || o.key !== `${PACKS_DIR}/${name.slice(0, 2)}/${name}`) continue;
      if (await statOrNull(opts.fetcher.localPath(name))) continue;
      await opts.fetcher.placeholder(name, o.modified);
      report.placeholders++;
    }
  }
  return report;
}

/** A writer of this cache holds the VM lock naming this point (pointWriter, FORMAT.md §8). */
async function committing(root: string, pointId: string): Promise<boolean> {
  return (await liveVmLocks(path.join(root, LOCKS_DIR))).some((l) => l.info?.pointId === pointId);
}
