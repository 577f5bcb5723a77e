/**
 * repository.s3 as the loader checks and resolves it (load.ts): beside repository.path and the
 * format, where its credentials are (a named file, or the environment or the default AWS
 * credentials file: found here, not at the first request), and its defaults filled.
 */
import { createHash } from 'crypto';
import { stat } from 'fs/promises';
import * as nodePath from 'path';
import { AppError } from '../errors';
import { DEFAULTS } from './defaults';
import { findS3Credentials } from './s3Credentials';
import type { S3Connection, S3Settings } from './s3Schema';
import type { ParsedConfigFile } from './schema';

/**
 * repository.s3 beside the rest: it replaces repository.path (its cache is s3.cacheDir), holds
 * format 2 only, and its credentials must be somewhere (a named file, or the environment or the
 * default AWS credentials file) — found here, not at the first request.
 */
export async function checkS3(v: ParsedConfigFile, env: NodeJS.ProcessEnv, problems: string[], warnings: string[]): Promise<void> {
  const s3 = v.repository?.s3;
  if (s3 !== undefined) {
    if (v.repository?.path !== undefined) problems.push('repository.path: a repository on object storage (repository.s3) keeps its local copy in repository.s3.cacheDir: set that instead');
    if (v.repository?.format === 1) problems.push('repository.format: a repository on object storage (repository.s3) is format 2');
    await checkCredentials('repository.s3', s3, env, problems, warnings);
  }
  if (v.sync?.s3 !== undefined) await checkCredentials('sync.s3', v.sync.s3, env, problems, warnings);
}

/** The section's credentials are somewhere, and a named file is not readable by others. */
async function checkCredentials(key: string, s3: { credentialsFile?: string | undefined; profile?: string | undefined }, env: NodeJS.ProcessEnv, problems: string[], warnings: string[]): Promise<void> {
  try {
    const found = await findS3Credentials({ ...(s3.credentialsFile !== undefined ? { credentialsFile: s3.credentialsFile } : {}), ...(s3.profile !== undefined ? { profile: s3.profile } : {}), env }, 'CONFIG_INVALID');
    if (found.source === 'file') {
      const mode = (await stat(found.file)).mode;
      if ((mode & 0o044) !== 0) warnings.push(`${key}.credentialsFile: ${found.file} is readable by group or others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`);
    }
  } catch (err) {
    // a named file that cannot be read is reported with the other unreadable files
    if (s3.credentialsFile === undefined || !(err instanceof AppError && /cannot be read/.test(err.message))) problems.push(`${key}.credentialsFile: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The settings the service runs with; null without repository.s3. */
export function resolveS3(v: ParsedConfigFile, dataDir: string): S3Settings | null {
  const s3 = v.repository?.s3;
  if (s3 === undefined) return null;
  return {
    endpoint: s3.endpoint === undefined ? undefined : new URL(s3.endpoint).origin,
    bucket: s3.bucket,
    prefix: (s3.prefix ?? '').replace(/^\/+|\/+$/g, ''),
    region: s3.region ?? DEFAULTS.s3Region,
    // a private endpoint (Ceph RGW, MinIO) rarely has a DNS name per bucket
    forcePathStyle: s3.forcePathStyle ?? s3.endpoint !== undefined,
    caFile: s3.caFile,
    credentialsFile: s3.credentialsFile,
    profile: s3.profile,
    cacheDir: s3.cacheDir ?? nodePath.join(dataDir, 's3-cache'),
  };
}

/** sync.s3 as the service runs with it: its own keys when given (an off-site store is usually
 *  another endpoint: nothing is inherited key by key), else repository.s3's connection; null
 *  when neither is set. The caches of s3:// destinations live under sync.cacheDir. */
export function resolveSync(v: ParsedConfigFile, dataDir: string, repo: S3Settings | null): { s3: S3Connection | null; cacheDir: string } {
  const cacheDir = v.sync?.cacheDir ?? nodePath.join(dataDir, 'sync-cache');
  const own = v.sync?.s3;
  if (own !== undefined) {
    return {
      s3: {
        endpoint: own.endpoint === undefined ? undefined : new URL(own.endpoint).origin,
        region: own.region ?? DEFAULTS.s3Region,
        forcePathStyle: own.forcePathStyle ?? own.endpoint !== undefined,
        caFile: own.caFile,
        credentialsFile: own.credentialsFile,
        profile: own.profile,
      },
      cacheDir,
    };
  }
  if (repo === null) return { s3: null, cacheDir };
  const { endpoint, region, forcePathStyle, caFile, credentialsFile, profile } = repo;
  return { s3: { endpoint, region, forcePathStyle, caFile, credentialsFile, profile }, cacheDir };
}

/** The cache directory of one s3:// destination under sync.cacheDir: readable, and distinct per
 *  store location (a hash of it), since a cache belongs to one store only. */
export function syncCacheDirOf(cacheRoot: string, bucket: string, prefix: string): string {
  const location = `s3://${bucket}/${prefix}`;
  const readable = `${bucket}-${prefix}`.replace(/[^A-Za-z0-9.-]+/g, '_').slice(0, 80);
  return nodePath.join(cacheRoot, `${readable}-${createHash('sha256').update(location).digest('hex').slice(0, 12)}`);
}
