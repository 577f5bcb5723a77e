/**
 * Where a test repository lives (FORMAT.md §24): `local` (a directory, Repository.init/open),
 * `dir` (a cache directory + DirStore on a second directory: the remote code path without a
 * server) and `s3` (a cache directory + S3Store on the Ceph RGW lab, test/helpers/s3Lab.ts).
 * A suite that checks what every repository must do runs once per backend through
 * `describe.each(backends())`; the store of a remote repository is found again from its cache
 * directory (`repo.dir`), also by a child process (`childOpenScript`).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { Repository, type InitOptions, type RemoteRepoOptions, type RepositoryOptions } from '../../backend/src/repository';
import { DirStore } from '../../backend/src/repository/store/dirStore';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { initRepoOnStore, openRepoOnStore } from '../../backend/src/repository/store/open';

export type BackendName = 'local' | 'dir' | 's3';

export interface RepoBackend {
  name: BackendName;
  /** A new repository with its cache (remote) or itself (local) in `dir`. */
  init(dir: string, opts?: InitOptions & RemoteRepoOptions): Promise<Repository>;
  /** Opens it again (remote: writer unless `mode: 'reader'`; `cacheDir` another cache). */
  open(dir: string, opts?: RepositoryOptions & RemoteRepoOptions & { cacheDir?: string }): Promise<Repository>;
  /** The store of a remote repository (a fresh client: the caller closes it), else null. */
  store(dir: string): Promise<ObjectStore | null>;
  /** JS source (CommonJS, for `node -e`) of an async function `openRepo(opts)` opening the
   *  repository of `dir` as `open` does, from the compiled module at `repoModule`. */
  childOpenScript(dir: string, repoModule: string): string;
}

/** For the `dir` backend: the store directory of the cache `dir`. */
function storeDirOf(dir: string): string {
  return `${path.resolve(dir)}.store`;
}

/** Test repositories on a directory store have no Object Lock: retention is dropped. */
const DIR_REMOTE: RemoteRepoOptions = { requireObjectLock: false };

export const LOCAL: RepoBackend = {
  name: 'local',
  init: (dir, opts = {}) => Repository.init(dir, opts),
  open: (dir, opts = {}) => Repository.open(dir, opts),
  store: () => Promise.resolve(null),
  childOpenScript: (dir, repoModule) => `const openRepo = (o) => require(${JSON.stringify(repoModule)}).Repository.open(${JSON.stringify(dir)}, o);`,
};

export const DIR: RepoBackend = {
  name: 'dir',
  async init(dir, opts = {}) {
    await fs.mkdir(storeDirOf(dir), { recursive: true });
    return initRepoOnStore(new DirStore(storeDirOf(dir), { ignoreRetention: true }), dir, { ...DIR_REMOTE, ...opts });
  },
  open(dir, opts = {}) {
    const { cacheDir, ...rest } = opts;
    return openRepoOnStore(new DirStore(storeDirOf(dir), { ignoreRetention: true }), cacheDir ?? dir, { ...DIR_REMOTE, ...rest });
  },
  store: (dir) => Promise.resolve(new DirStore(storeDirOf(dir), { ignoreRetention: true })),
  childOpenScript: (dir, repoModule) => `
    const openRepo = (o) => {
      const { DirStore } = require(${JSON.stringify(path.join(repoModule, 'store', 'dirStore'))});
      const { openRepoOnStore } = require(${JSON.stringify(path.join(repoModule, 'store', 'open'))});
      return openRepoOnStore(new DirStore(${JSON.stringify(storeDirOf(dir))}, { ignoreRetention: true }), ${JSON.stringify(dir)}, { requireObjectLock: false, ...o });
    };`,
};

/** The backends a suite runs on: local and the directory store always, s3 when the lab's store
 *  helper is built in (s3Backend.ts registers it). */
export function backends(): RepoBackend[] {
  return [LOCAL, DIR, ...extra];
}

const extra: RepoBackend[] = [];

/** @internal s3Backend.ts adds the s3 backend. */
export function registerBackend(b: RepoBackend): void {
  if (!extra.some((e) => e.name === b.name)) extra.push(b);
}

export function remoteBackends(): RepoBackend[] {
  return backends().filter((b) => b.name !== 'local');
}
