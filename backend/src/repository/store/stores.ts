import { AppError } from '../../errors';
import { DirStore } from './dirStore';
import { isSafeKey, type ObjectStore } from './objectStore';
import type { S3Config, S3Url } from './s3Config';
import { S3Store, type S3StoreOptions } from './s3Store';

/**
 * Which ObjectStore a location means, and the `s3://BUCKET/PREFIX` syntax of the command line.
 * The one place that turns a store spec into an open store, so that the Object Lock requirement
 * (protection.requireObjectLock) is checked once, at open, for every caller.
 */

export type StoreSpec =
  | { kind: 'dir'; dir: string; ignoreRetention?: boolean }
  | { kind: 's3'; s3: S3Config; requireObjectLock?: boolean; options?: Omit<S3StoreOptions, 'requireObjectLock'> };

/**
 * Opens the store. For s3 the bucket must exist (STORE_BUCKET_MISSING), and `requireObjectLock`
 * (default true, the product's protection default) makes the open fail with STORE_NO_OBJECT_LOCK on a bucket without Object Lock; with false, a
 * put's retention is dropped on such a bucket (the repository then has local locks only).
 */
export async function openStore(spec: StoreSpec): Promise<ObjectStore> {
  if (spec.kind === 'dir') return new DirStore(spec.dir, { ignoreRetention: spec.ignoreRetention });
  return S3Store.open(spec.s3, { ...spec.options, requireObjectLock: spec.requireObjectLock });
}

const S3_SCHEME = /^s3:\/\//i;

/**
 * `s3://BUCKET/PREFIX` → `{ bucket, prefix }` (prefix without leading/trailing `/`, '' for the
 * bucket's root); null when `url` is not an s3 URL at all; INVALID_ARGUMENT when it is one but
 * malformed (bucket name outside S3's rules, empty/`.`/`..` prefix segments).
 */
export function parseS3Url(url: string): S3Url | null {
  if (!S3_SCHEME.test(url)) return null;
  const rest = url.replace(S3_SCHEME, '');
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  const why = bucketNameProblem(bucket);
  if (why) throw new AppError('INVALID_ARGUMENT', `${url}: bucket name ${JSON.stringify(bucket)} ${why}`);
  if (prefix !== '' && !isSafeKey(prefix)) {
    throw new AppError('INVALID_ARGUMENT', `${url}: the prefix ${JSON.stringify(prefix)} must be '/'-separated names without empty, '.' or '..' parts`);
  }
  if (/[?#]/.test(url)) throw new AppError('INVALID_ARGUMENT', `${url}: an s3 URL has no query or fragment`);
  return { bucket, prefix };
}

/** Why `name` is not a valid S3 bucket name (AWS's general-purpose bucket rules), or undefined. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (!/^[a-z0-9.-]+$/.test(name)) return 'may contain only lowercase letters, digits, dots and hyphens';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent dots';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'must not look like an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'must not begin with xn--, sthree- or amzn-s3-demo-';
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return 'must not end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)';
  return undefined;
}
