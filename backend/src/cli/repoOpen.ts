/**
 * How a command opens the repository its --repo names — a directory, or an s3:// repository
 * through its local cache (repoSpec.ts) — as a reader or as the one writer (an encrypted one
 * with the passphrase from --passphrase-file or the environment), and who the audit log names
 * for what it does there. The one place the CLI calls the repository's openRepo/initRepo.
 * Loaded by the commands' actions on demand (it loads the repository module), never by their
 * registration.
 */
import { realpath } from 'fs/promises';
import * as path from 'path';
import { readPassphrase } from '../config';
import { AppError, isAppError } from '../errors';
import { initRepo, openRepo, parseRepoLocation, processActor, type InitOptions, type Repository, type RepoSpec } from '../repository';
import type { RepoFlags, S3Flags } from './repoFlags';
import { repoSpecFrom } from './repoSpec';

/** The repository to read. An s3:// one is opened as a reader: it never writes to the store
 *  (read-only credentials suffice); its leases and audit stay in its cache directory. A
 *  command that writes opens it with openForWriting (repoOwner.ts). */
export async function openRepository(o: RepoFlags): Promise<Repository> {
  return openSpec(await repoSpecFrom(o), 'reader', o);
}

/** `spec` opened as `mode` (repoOwner.ts checks the owner first for a writer). */
export async function openSpec(spec: RepoSpec, mode: 'reader' | 'writer', o: { passphraseFile?: string }, extra: { bypassGovernance?: boolean } = {}): Promise<Repository> {
  return openRepo(spec, { passphrase: passphraseFrom(o), ...(spec.kind === 's3' ? { mode, holder: cliHolder(), ...extra } : {}) });
}

/** `repo init`: a new repository; on s3 the bucket is created with Object Lock when missing. */
export async function initSpec(spec: RepoSpec, opts: InitOptions & { objectLock?: 'compliance' | 'governance' | 'off' }): Promise<Repository> {
  if (spec.kind === 'local') return initRepo(spec, opts);
  const objectLock = opts.objectLock ?? 'compliance';
  return initRepo(spec, {
    ...opts,
    objectLock,
    mode: 'writer',
    holder: cliHolder(),
    requireObjectLock: objectLock !== 'off',
    ...(objectLock !== 'off' ? { objectLockMode: objectLock } : {}),
  });
}

/** Where the passphrase comes from: asked by the repository only when it is encrypted, so a
 *  plain repository never needs one. */
function passphraseFrom(o: { passphraseFile?: string }): () => Promise<string> {
  return () =>
    readPassphrase({
      ...(o.passphraseFile === undefined ? {} : { file: o.passphraseFile }),
      onWarning: (message) => process.stderr.write(`olvm-backup: warning: ${message}\n`),
    });
}

/** The writer lease's holder for this command: who, where, which process. */
function cliHolder(): string {
  return `${processActor('cli')}:${process.pid}`;
}

/**
 * Opens one end of `repo sync` — a directory, or `s3://BUCKET/PREFIX` with the S3 flags the run
 * shares and this end's own cache — as every command opens its --repo (repoSpecFrom). The
 * source opens as a reader (read-only credentials suffice), the destination as the store's one
 * writer. `flag` names the option in messages (`--from`, `--to`); an encrypted end's passphrase
 * comes from its own file option, else the environment.
 */
export async function openSyncEnd(location: string, o: { flag: string; mode: 'reader' | 'writer'; passphraseFile?: string; s3: S3Flags }): Promise<Repository> {
  // the S3 flags are shared by both ends: a directory end ignores them
  const spec = await repoSpecFrom(parseRepoLocation(location).kind === 's3' ? { ...o.s3, repo: location } : { repo: location });
  const read = passphraseFrom(o.passphraseFile === undefined ? {} : { passphraseFile: o.passphraseFile });
  const passphrase = async (): Promise<string> => {
    try {
      return await read();
    } catch (err) {
      if (!isAppError(err, 'REPO_KEY_REQUIRED')) throw err;
      throw new AppError('REPO_KEY_REQUIRED', `${o.flag} ${location} is encrypted: give ${o.flag}-passphrase-file FILE (or OLVM_BACKUP_REPO_PASSPHRASE)`, { cause: err });
    }
  };
  try {
    return await openRepo(spec, { passphrase, ...(spec.kind === 's3' ? { mode: o.mode, holder: cliHolder() } : {}) });
  } catch (err) {
    if (isAppError(err, 'REPO_KEY_WRONG')) throw new AppError('REPO_KEY_WRONG', `the passphrase given for ${o.flag} does not open ${location}`, { cause: err });
    throw err;
  }
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
