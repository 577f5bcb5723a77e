/**
 * INTERIM (branch s3-cli): the opening API of S3-DESIGN.md ("Opening API") until the mirror's
 * repository/store/open.ts is merged, so that the command line and the service are written
 * against it now and switch by deleting this file and its line in repository/index.ts. A local
 * spec opens the directory as today; an s3 spec is refused with a message saying this build has
 * no object-store backend. parseRepoLocation is complete (the CLI's messages depend on it).
 */
import { AppError } from '../../errors';
import { Repository, type InitOptions, type RepositoryOptions } from '../repository';
import type { S3Config } from './s3Config';

export type RepoSpec = { kind: 'local'; dir: string } | { kind: 's3'; s3: S3Config; cacheDir: string };

export interface RemoteRepoOptions extends RepositoryOptions {
  mode?: 'writer' | 'reader';
  holder?: string;
  requireObjectLock?: boolean;
  objectLockMode?: 'compliance' | 'governance';
  keepPacks?: boolean;
}


function noBackend(spec: { s3: S3Config }): AppError {
  return new AppError('STORE_UNAVAILABLE', `s3://${spec.s3.bucket}/${spec.s3.prefix}: this build has no object-store backend (repository/store/open.ts is missing)`);
}

export async function openRepo(spec: RepoSpec, opts: RemoteRepoOptions = {}): Promise<Repository> {
  if (spec.kind === 's3') throw noBackend(spec);
  return Repository.open(spec.dir, opts);
}

export async function initRepo(spec: RepoSpec, opts: InitOptions & RemoteRepoOptions & { objectLock?: 'compliance' | 'governance' | 'off' } = {}): Promise<Repository> {
  if (spec.kind === 's3') throw noBackend(spec);
  return Repository.init(spec.dir, opts);
}

/** `s3://BUCKET/PREFIX` → bucket and prefix (INVALID_ARGUMENT when malformed); anything without
 *  a URL scheme → a directory. Bucket names as S3 allows them (3–63 of a-z 0-9 . -). */
export function parseRepoLocation(s: string): { kind: 'local'; dir: string } | { kind: 's3'; bucket: string; prefix: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (!scheme) return { kind: 'local', dir: s };
  if (scheme[1] !== 's3') throw new AppError('INVALID_ARGUMENT', `repository '${s}': a repository is a directory or s3://BUCKET/PREFIX, not a ${scheme[1]}:// URL`);
  const rest = s.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw new AppError('INVALID_ARGUMENT', `repository '${s}': '${bucket}' is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-'; s3://BUCKET/PREFIX)`);
  }
  if (prefix !== '' && prefix.split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.includes('\\'))) {
    throw new AppError('INVALID_ARGUMENT', `repository '${s}': the prefix '${prefix}' has an empty, '.' or '..' segment`);
  }
  if (/[\0-\x1f?#]/.test(prefix)) throw new AppError('INVALID_ARGUMENT', `repository '${s}': the prefix holds a control character, '?' or '#'`);
  return { kind: 's3', bucket, prefix };
}
