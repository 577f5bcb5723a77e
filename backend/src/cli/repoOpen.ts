/**
 * How a command opens the repository its --repo names (an encrypted one with the passphrase from
 * --passphrase-file or the environment), and who the audit log names for what it does there.
 * Loaded by the commands' actions on demand (it loads the repository module), never by their
 * registration.
 */
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

/** Who the audit log names for an action from this shell: `cli:<user>@<host>`, or the name
 *  the operator gave with --operator. */
export function cliActor(operator?: string): string {
  return operator ? `cli:${operator}` : processActor('cli');
}
