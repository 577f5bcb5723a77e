import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../errors';
import { fsyncDir, isErrno } from '../atomicFile';
import { isSafeKey, type BucketLock, type DeleteResult, type HeadInfo, type ObjectInfo, type ObjectStore, type PutOptions, type PutResult, type Retention } from './objectStore';

/**
 * The ObjectStore contract on a plain local directory (tests, `repo sync` to a disk): key
 * `a/b/c` is the file DIR/a/b/c. Objects appear whole (temp + fsync + rename/link + directory
 * fsync), so a reader sees nothing or everything, also after a power cut. A directory has no
 * Object Lock: asking for retention is refused (STORE_NO_OBJECT_LOCK) unless the store was
 * opened with `ignoreRetention` (the repository then relies on its own local locks only).
 */

/** Temp files carry this marker so that list() skips them and abortStaleUploads() finds them. */
export const TMP_MARK = '.olvm-tmp-';

export interface DirStoreOptions {
  /** Accept (and drop) retention on put/extendRetention instead of refusing it. */
  ignoreRetention?: boolean;
}

export class DirStore implements ObjectStore {
  readonly kind = 'dir' as const;
  readonly location: string;
  private readonly root: string;
  private readonly ignoreRetention: boolean;

  constructor(dir: string, opts: DirStoreOptions = {}) {
    this.root = path.resolve(dir);
    this.location = this.root;
    this.ignoreRetention = opts.ignoreRetention === true;
  }

  async put(key: string, body: Buffer | { file: string }, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.fileOf(key);
    if (opts.retention) this.refuseRetention(key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await this.writeTemp(dir, tmp, body);
      let created = true;
      if (opts.ifAbsent) {
        // link() fails with EEXIST when the name exists: the create-if-absent is atomic, no race
        try {
          await fs.link(tmp, file);
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
          created = false;
        }
      } else {
        await fs.rename(tmp, file);
      }
      if (created) await fsyncDir(dir);
      return { created };
    } catch (err) {
      throw ioError(`writing ${key} into ${this.location} failed`, err);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.fileOf(key));
    } catch (err) {
      throw this.readError(key, err);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    checkRange(offset, length);
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(this.fileOf(key), 'r');
      const size = (await fh.stat()).size;
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.alloc(n);
      let done = 0;
      while (done < n) {
        const { bytesRead } = await fh.read(buf, done, n - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === n ? buf : buf.subarray(0, done);
    } catch (err) {
      throw this.readError(key, err);
    } finally {
      await fh?.close();
    }
  }

  async download(key: string, file: string): Promise<number> {
    const src = this.fileOf(key);
    const tmp = `${file}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.copyFile(src, tmp);
      const fh = await fs.open(tmp, 'r+');
      let size: number;
      try {
        await fh.sync();
        size = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, file);
      return size;
    } catch (err) {
      throw this.readError(key, err);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async head(key: string): Promise<HeadInfo | null> {
    try {
      const st = await fs.stat(this.fileOf(key));
      if (!st.isFile()) return null;
      return { key, size: st.size, modified: st.mtime };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      throw ioError(`reading ${key} in ${this.location} failed`, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix names (its part up to the last '/'), then sort the keys
    // as S3 does (UTF-8 byte order): a per-directory walk alone would put `a/b` before `a-c`.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut);
    if (base !== '' && !isSafeKey(base)) throw new AppError('INVALID_ARGUMENT', `not a valid key prefix: ${JSON.stringify(prefix)}`);
    const found: ObjectInfo[] = [];
    await this.walk(base, prefix, found);
    found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    yield* found;
  }

  /** A directory has no Object Lock. */
  lockedUntil(key: string): Promise<Retention | null> {
    try {
      this.fileOf(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(null);
  }

  async delete(key: string): Promise<DeleteResult> {
    const file = this.fileOf(key);
    try {
      await fs.unlink(file);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return { state: 'absent' };
      throw ioError(`deleting ${key} in ${this.location} failed`, err);
    }
    await fsyncDir(path.dirname(file)).catch(() => undefined);
    return { state: 'deleted' };
  }

  async extendRetention(key: string, _retention: Retention): Promise<void> {
    this.refuseRetention(key);
    if ((await this.head(key)) === null) throw new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}`);
  }

  bucketLock(): Promise<BucketLock> {
    return Promise.resolve({ enabled: false });
  }

  /** A directory's "unfinished uploads" are temp files a crashed writer left behind. */
  async abortStaleUploads(olderThan: Date): Promise<number> {
    let removed = 0;
    const visit = async (dir: string): Promise<void> => {
      for (const e of await entriesOf(dir)) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await visit(p);
        else if (e.isFile() && e.name.includes(TMP_MARK)) {
          const st = await fs.stat(p).catch(() => null);
          if (st && st.mtime < olderThan) {
            await fs.rm(p, { force: true });
            removed++;
          }
        }
      }
    };
    await visit(this.root);
    return removed;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private fileOf(key: string): string {
    if (!isSafeKey(key)) throw new AppError('INVALID_ARGUMENT', `not a valid object key: ${JSON.stringify(key)}`);
    return path.join(this.root, ...key.split('/'));
  }

  private refuseRetention(key: string): void {
    if (!this.ignoreRetention) {
      throw new AppError('STORE_NO_OBJECT_LOCK', `${this.location} is a directory and has no Object Lock: retention for ${key} cannot be set`);
    }
  }

  private async writeTemp(dir: string, tmp: string, body: Buffer | { file: string }): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    if (Buffer.isBuffer(body)) {
      const fh = await fs.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else {
      await fs.copyFile(body.file, tmp, fs.constants.COPYFILE_EXCL);
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }

  private async walk(rel: string, prefix: string, out: ObjectInfo[]): Promise<void> {
    const dir = rel === '' ? this.root : path.join(this.root, ...rel.split('/'));
    for (const e of await entriesOf(dir)) {
      if (e.name.includes(TMP_MARK)) continue;
      const key = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        // descend only where keys under it can still match the prefix
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(key, prefix, out);
      } else if (e.isFile() && key.startsWith(prefix)) {
        const st = await fs.stat(path.join(dir, e.name)).catch(() => null);
        if (st) out.push({ key, size: st.size, modified: st.mtime });
      }
    }
  }

  private readError(key: string, err: unknown): AppError {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) return new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}`, { cause: err });
    return err instanceof AppError ? err : ioError(`reading ${key} in ${this.location} failed`, err);
  }
}

function ioError(what: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const words = err instanceof Error ? err.message : String(err);
  return new AppError('STORE_UNAVAILABLE', `${what}: ${words}`, { cause: err });
}

export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new AppError('INVALID_ARGUMENT', `invalid byte range: offset ${offset}, length ${length}`);
  }
}

/** The entries of `dir`, none when it (or a parent) is gone: a key's folder vanishes when its
 *  last object is deleted, and listing must not fail for that. */
async function entriesOf(dir: string): Promise<import('fs').Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw ioError(`listing ${dir} failed`, err);
  }
}
