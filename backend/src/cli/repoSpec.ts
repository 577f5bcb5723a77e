/**
 * What a command's --repo and S3 flags name: a directory, or an s3:// repository (its S3Config
 * and local cache directory), checked before anything is opened so that a mistake is one clear
 * line — an S3 flag beside a directory, a malformed URL or endpoint, a CA file that cannot be
 * read, credentials that are nowhere (config/s3Credentials.ts says where they were looked for).
 * Loaded by the actions (repoOpen.ts, repoOwner.ts), never by the commands' registration.
 */
import { constants } from 'fs';
import { access } from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { findS3Credentials } from '../config';
import { AppError } from '../errors';
import { parseRepoLocation, type RepoSpec, type S3Config } from '../repository';
import { DEFAULT_S3_REGION, S3_FLAG_NAMES, type RepoFlags, type S3Flags } from './repoFlags';

/** The spec of --repo; `env` for tests (default process.env). */
export async function repoSpecFrom(o: RepoFlags, env: NodeJS.ProcessEnv = process.env): Promise<RepoSpec> {
  const where = parseRepoLocation(o.repo);
  const given = (Object.keys(S3_FLAG_NAMES) as Array<keyof S3Flags>).filter((k) => o[k] !== undefined && o[k] !== false);
  if (where.kind === 'local') {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(o.repo);
    if (scheme) throw new AppError('INVALID_ARGUMENT', `--repo ${o.repo}: a repository is a directory or s3://BUCKET/PREFIX, not a ${scheme[1]}:// URL`);
    if (given.length > 0) {
      throw new AppError('INVALID_ARGUMENT', `${given.map((k) => S3_FLAG_NAMES[k]).join(', ')}: only for an s3://BUCKET/PREFIX repository, and --repo ${o.repo} is a directory`);
    }
    return { kind: 'local', dir: where.dir };
  }
  if (o.s3PathStyle && o.s3VirtualHost) throw new AppError('INVALID_ARGUMENT', '--s3-path-style and --s3-virtual-host: give one of them');
  const endpoint = o.s3Endpoint === undefined ? undefined : checkEndpoint(o.s3Endpoint);
  if (o.s3Ca !== undefined) await readable(o.s3Ca, '--s3-ca');
  const region = o.s3Region ?? DEFAULT_S3_REGION;
  if (!/^[a-z0-9-]{1,64}$/i.test(region)) throw new AppError('INVALID_ARGUMENT', `--s3-region: '${region}' is not a region name`);
  const creds = await findS3Credentials({ ...(o.s3Profile !== undefined ? { profile: o.s3Profile } : {}), env });
  const s3: S3Config = {
    ...(endpoint !== undefined ? { endpoint } : {}),
    bucket: where.bucket,
    prefix: where.prefix,
    region,
    // a private endpoint (Ceph RGW, MinIO) rarely has a DNS name per bucket; AWS wants virtual hosts
    forcePathStyle: o.s3PathStyle === true || (endpoint !== undefined && o.s3VirtualHost !== true),
    ...(o.s3Ca !== undefined ? { caFile: path.resolve(o.s3Ca) } : {}),
    ...(creds.source === 'file' ? { credentialsFile: creds.file, profile: creds.profile } : {}),
  };
  return { kind: 's3', s3, cacheDir: path.resolve(o.cache ?? defaultCacheDir(where.bucket, where.prefix, env)) };
}

/** Where the directory or cache lives on this machine (the owner check looks there). */
export function localDirOf(spec: RepoSpec): string {
  return path.resolve(spec.kind === 'local' ? spec.dir : spec.cacheDir);
}

/** `s3://bucket/prefix` or the directory, for messages. */
export function describeSpec(spec: RepoSpec): string {
  return spec.kind === 'local' ? path.resolve(spec.dir) : `s3://${spec.s3.bucket}/${spec.s3.prefix}`;
}

/** root: /var/cache/olvm-backup/s3/BUCKET/PREFIX; anyone else: the XDG cache directory. */
export function defaultCacheDir(bucket: string, prefix: string, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = process.getuid?.() === 0 ? '/var/cache' : xdg && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] || os.homedir(), '.cache');
  return path.join(base, 'olvm-backup', 's3', bucket, ...(prefix === '' ? [] : prefix.split('/')));
}

function checkEndpoint(text: string): string {
  const u = URL.canParse(text) ? new URL(text) : undefined;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new AppError('INVALID_ARGUMENT', `--s3-endpoint: '${text}' is not an http(s) URL like https://rgw.example:7480`);
  if (u.username !== '' || u.password !== '') throw new AppError('INVALID_ARGUMENT', '--s3-endpoint: must not hold a user or secret (credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the credentials file)');
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '') throw new AppError('INVALID_ARGUMENT', `--s3-endpoint: '${text}' must be scheme://host[:port] only (the bucket and prefix go in --repo s3://BUCKET/PREFIX)`);
  return u.origin;
}

async function readable(file: string, flag: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `${flag}: cannot read ${file}`, { cause: err });
  }
}
