/**
 * How a command opens the repository its --repo names (an encrypted one with the passphrase from
 * --passphrase-file or the environment), how `repo sync` opens its two ends, and who the audit
 * log names for what it does there.
 * Loaded by the commands' actions on demand (it loads the repository module), never by their
 * registration.
 */
import { realpath } from 'fs/promises';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { readPassphrase } from '../config';
import { processActor, Repository } from '../repository';
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

/**
 * Opens one end of `repo sync` from its location: THE place where a location becomes a
 * repository for it. Today a location is a directory; once repository/store/open.ts exists,
 * `s3://BUCKET/PREFIX` goes through parseRepoLocation/openRepo here and nothing else changes.
 * `flag` names the option for messages (`--from`, `--to`); the passphrase of an encrypted end
 * comes from its own file option, else the environment. (The destination's owner is checked by
 * the command first: repoOwner.ts.)
 */
export async function openSyncEnd(location: string, o: { flag: string; passphraseFile?: string }): Promise<Repository> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new AppError('INVALID_ARGUMENT', `${o.flag} ${location}: only repository directories are supported by this build (object storage comes with the s3 backend)`);
  }
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
  try {
    return await Repository.open(location, { passphrase });
  } catch (err) {
    if (isAppError(err, 'REPO_KEY_WRONG')) throw new AppError('REPO_KEY_WRONG', `the passphrase given for ${o.flag} does not open ${location}`, { cause: err });
    throw err;
  }
}

/** Refuses `repo sync` from a location to itself before either end asks for a passphrase (the
 *  repository layer refuses it too, by repository id, for two locations of one repository). */
export async function checkSyncEnds(from: string, to: string): Promise<void> {
  const real = (p: string): Promise<string> => realpath(p).catch(() => path.resolve(p));
  if ((await real(from)) === (await real(to))) {
    throw new AppError('INVALID_ARGUMENT', `the source and the destination are the same repository (${from}): nothing to copy`);
  }
}

/** Who the audit log names for an action from this shell: `cli:<user>@<host>`, or the name
 *  the operator gave with --operator. */
export function cliActor(operator?: string): string {
  return operator ? `cli:${operator}` : processActor('cli');
}
