/**
 * Pack files of a remote repository's cache (FORMAT.md §24): a read that needs a pack the cache
 * does not hold downloads it whole first (the store runs several ranged GETs in flight), once
 * however many readers ask at the same time. A writer with `keepPacks: false` evicts a pack once
 * it is in the store: the file is replaced by an empty placeholder with the same mtime, so that
 * the mtime protocol of the collection (§20) and a writer's reuse of the pack work unchanged; a
 * pack is never shorter than 72 bytes, so an empty file can only be a placeholder.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../../errors';
import { isErrno } from '../atomicFile';
import { packPath, PACKS_DIR } from '../layout';
import type { ObjectStore } from './objectStore';

export function packKey(name: string): string {
  return `${PACKS_DIR}/${name.slice(0, 2)}/${name}`;
}

export class PackFetcher {
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(
    private readonly root: string,
    private readonly store: ObjectStore,
  ) {}

  localPath(name: string): string {
    return packPath(this.root, name);
  }

  /** Whether the cache holds the pack's bytes (not absent, not a placeholder). */
  async isLocal(name: string): Promise<boolean> {
    const st = await fs.stat(this.localPath(name)).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    });
    return st !== undefined && st.size > 0;
  }

  /** Downloads the pack unless the cache holds it. A pack the store does not have either is
   *  left absent: the reader then reports it missing as for a local repository. */
  ensure(name: string): Promise<void> {
    let p = this.fetching.get(name);
    if (!p) {
      p = this.fetch(name).finally(() => this.fetching.delete(name));
      this.fetching.set(name, p);
    }
    return p;
  }

  private async fetch(name: string): Promise<void> {
    const file = this.localPath(name);
    const st = await fs.stat(file).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw new AppError('REPO_IO_ERROR', `stat ${file} failed`, { cause: err });
    });
    if (st && st.size > 0) return;
    await fs.mkdir(path.dirname(file), { recursive: true });
    try {
      await this.store.download(packKey(name), file);
    } catch (err) {
      if (isAppError(err, 'STORE_NOT_FOUND')) return;
      throw err;
    }
    // a placeholder's mtime is the one the collection judges the pack by: kept
    if (st) await fs.utimes(file, st.atime, st.mtime).catch(() => undefined);
  }

  /** Replaces the cached pack by an empty placeholder with the same mtime (atomic rename: a
   *  read that opened the file already keeps reading the bytes). */
  async evict(name: string): Promise<void> {
    const file = this.localPath(name);
    const st = await fs.stat(file).catch(() => undefined);
    if (!st || st.size === 0) return;
    const tmp = path.join(path.dirname(file), `.evict-${name}`);
    await fs.writeFile(tmp, Buffer.alloc(0), { mode: 0o444 });
    await fs.utimes(tmp, st.atime, st.mtime);
    await fs.rename(tmp, file);
  }

  /** Creates placeholders for packs the store has and the cache lacks (a fresh cache of a
   *  writer), dated as the store dates them. */
  async placeholder(name: string, modified: Date): Promise<void> {
    const file = this.localPath(name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    try {
      await fs.writeFile(file, Buffer.alloc(0), { flag: 'wx', mode: 0o444 });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return;
      throw err;
    }
    await fs.utimes(file, modified, modified);
  }
}
