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
import { initRepo as initRemote, initRepoOnStore, openRepoOnStore, openRepo as openRemote } from '../../backend/src/repository/store/open';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { S3Store } from '../../backend/src/repository/store/s3Store';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket } from './s3Lab';

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

/** For the `s3` backend: the S3Config of the repository cached in `dir` (its own bucket on the
 *  lab, created with Object Lock), kept beside it so that a child process finds it. */
function s3ConfigFile(dir: string): string {
  return `${path.resolve(dir)}.s3.json`;
}

async function s3ConfigOf(dir: string): Promise<S3Config> {
  return JSON.parse(await fs.readFile(s3ConfigFile(dir), 'utf8')) as S3Config;
}

export const S3: RepoBackend = {
  name: 's3',
  async init(dir, opts = {}) {
    const lab = await s3Lab();
    await fs.mkdir(path.dirname(path.resolve(dir)), { recursive: true });
    const creds = await labCredentialsFile(lab, path.dirname(path.resolve(dir)));
    const s3 = labS3Config(lab, uniqueBucket('olvm-repo'), creds, 'repo');
    await fs.writeFile(s3ConfigFile(dir), JSON.stringify(s3));
    return initRemote({ kind: 's3', s3, cacheDir: dir }, opts);
  },
  async open(dir, opts = {}) {
    const { cacheDir, ...rest } = opts;
    return openRemote({ kind: 's3', s3: await s3ConfigOf(dir), cacheDir: cacheDir ?? dir }, rest);
  },
  async store(dir) {
    return S3Store.open(await s3ConfigOf(dir), { requireObjectLock: false });
  },
  childOpenScript: (dir, repoModule) => `
    const openRepo = (o) => {
      const { openRepo: open } = require(${JSON.stringify(path.join(repoModule, 'store', 'open'))});
      const s3 = JSON.parse(require('fs').readFileSync(${JSON.stringify(s3ConfigFile(dir))}, 'utf8'));
      return open({ kind: 's3', s3, cacheDir: ${JSON.stringify(path.resolve(dir))} }, o);
    };`,
};

/** The backends a suite runs on: a local directory, a directory store, S3 on the Ceph lab.
 *  OLVM_TEST_BACKENDS=local,dir (a comma list) narrows it for a quick run. */
export function backends(): RepoBackend[] {
  const all = [LOCAL, DIR, S3];
  const only = process.env['OLVM_TEST_BACKENDS'];
  if (!only) return all;
  const names = new Set(only.split(',').map((n) => n.trim()));
  return all.filter((b) => names.has(b.name));
}

export function remoteBackends(): RepoBackend[] {
  return backends().filter((b) => b.name !== 'local');
}
