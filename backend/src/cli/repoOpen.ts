/**
 * How a command opens the repository its --repo names (an encrypted one with the passphrase from
 * --passphrase-file or the environment), how `repo sync` opens its two ends, and who the audit
 * log names for what it does there.
 * Loaded by the commands' actions on demand (it loads the repository module), never by their
 * registration.
 */
import { realpath } from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { readPassphrase } from '../config';
import { openRepo, parseRepoLocation, processActor, Repository, type RepoSpec, type S3Config } from '../repository';
import type { RepoFlags } from './repoFlags';

/** The repository to read; a command that writes opens it with openForWriting (repoOwner.ts). */
export async function openRepository(o: RepoFlags): Promise<Repository> {
  return Repository.open(o.repo, { passphrase: passphraseFrom(o) });
}

/** Where the passphrase comes from: asked by Repository.open only when the repository is
 *  encrypted, so a plain repository never needs one. */
function passphraseFrom(o: { passphraseFile?: string }): () => Promise<string> {
  return () =>
    readPassphrase({
      ...(o.passphraseFile === undefined ? {} : { file: o.passphraseFile }),
      onWarning: (message) => process.stderr.write(`olvm-backup: warning: ${message}\n`),
    });
}

/** How `repo sync` reaches an s3:// end (the names of the S3 flags every repository command takes). */
export interface SyncS3Flags {
  s3Endpoint?: string;
  s3Region?: string;
  s3Ca?: string;
  s3Profile?: string;
}

/**
 * Opens one end of `repo sync` from its location — a directory, or `s3://BUCKET/PREFIX` with its
 * local cache directory (`cache`, default ~/.cache/olvm-backup/s3/BUCKET/PREFIX) — through the
 * repository's parseRepoLocation/openRepo: THE place where a sync location becomes a repository.
 * The source opens as a reader (it never writes to its store: read-only credentials suffice),
 * the destination as the store's one writer. `flag` names the option for messages (`--from`,
 * `--to`); the passphrase of an encrypted end comes from its own file option, else the
 * environment. (The destination's owner is checked by the command first: repoOwner.ts.)
 */
export async function openSyncEnd(
  location: string,
  o: { flag: string; mode: 'reader' | 'writer'; passphraseFile?: string; cache?: string; s3?: SyncS3Flags },
): Promise<Repository> {
  const where = parseRepoLocation(location);
  const read = passphraseFrom(o.passphraseFile === undefined ? {} : { passphraseFile: o.passphraseFile });
  const option = `${o.flag}-passphrase-file`;
  const passphrase = async (): Promise<string> => {
    try {
      return await read();
    } catch (err) {
      if (!isAppError(err, 'REPO_KEY_REQUIRED')) throw err;
      throw new AppError('REPO_KEY_REQUIRED', `${o.flag} ${location} is encrypted: give ${option} FILE (or OLVM_BACKUP_REPO_PASSPHRASE)`, { cause: err });
    }
  };
  const spec: RepoSpec =
    where.kind === 'local'
      ? { kind: 'local', dir: where.dir }
      : { kind: 's3', s3: syncS3Config(where.bucket, where.prefix, o.s3 ?? {}), cacheDir: path.resolve(o.cache ?? defaultCache(where.bucket, where.prefix)) };
  try {
    return await openRepo(spec, { passphrase, ...(spec.kind === 's3' ? { mode: o.mode, holder: `${processActor('cli')}:${process.pid}` } : {}) });
  } catch (err) {
    if (isAppError(err, 'REPO_KEY_WRONG')) throw new AppError('REPO_KEY_WRONG', `the passphrase given for ${o.flag} does not open ${location}`, { cause: err });
    throw err;
  }
}

/** The S3Config of an s3:// end: a private endpoint (Ceph RGW, MinIO) path-style; credentials
 *  from the environment, or from the AWS credentials file's profile `s3Profile`. */
function syncS3Config(bucket: string, prefix: string, f: SyncS3Flags): S3Config {
  let endpoint: string | undefined;
  if (f.s3Endpoint !== undefined) {
    if (!URL.canParse(f.s3Endpoint) || !/^https?:$/.test(new URL(f.s3Endpoint).protocol)) {
      throw new AppError('INVALID_ARGUMENT', `--s3-endpoint: '${f.s3Endpoint}' is not an http(s) URL like https://rgw.example:7480`);
    }
    endpoint = new URL(f.s3Endpoint).origin;
  }
  const credentialsFile = process.env['AWS_SHARED_CREDENTIALS_FILE'] || path.join(os.homedir(), '.aws', 'credentials');
  return {
    ...(endpoint !== undefined ? { endpoint } : {}),
    bucket,
    prefix,
    region: f.s3Region ?? 'us-east-1',
    forcePathStyle: endpoint !== undefined,
    ...(f.s3Ca !== undefined ? { caFile: path.resolve(f.s3Ca) } : {}),
    ...(f.s3Profile !== undefined ? { credentialsFile, profile: f.s3Profile } : {}),
  };
}

function defaultCache(bucket: string, prefix: string): string {
  return path.join(process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'olvm-backup', 's3', bucket, ...(prefix === '' ? [] : prefix.split('/')));
}

/** Refuses `repo sync` from a location to itself before either end asks for a passphrase (the
 *  repository layer refuses it too, by repository id, for two locations of one repository). */
export async function checkSyncEnds(from: string, to: string): Promise<void> {
  const real = (p: string): Promise<string> => (parseRepoLocation(p).kind === 's3' ? Promise.resolve(p.replace(/\/+$/, '')) : realpath(p).catch(() => path.resolve(p)));
  if ((await real(from)) === (await real(to))) {
    throw new AppError('INVALID_ARGUMENT', `the source and the destination are the same repository (${from}): nothing to copy`);
  }
}

/** Who the audit log names for an action from this shell: `cli:<user>@<host>`, or the name
 *  the operator gave with --operator. */
export function cliActor(operator?: string): string {
  return operator ? `cli:${operator}` : processActor('cli');
}
