/**
 * The flags of the commands that work on a repository, defined once: registering them must stay
 * cheap (main.ts registers every command at each start), so this module imports nothing but
 * commander's types; what the flags do is in repoOpen.ts and repoOwner.ts, loaded by an action.
 */
import type { Command } from 'commander';

export const ALLOW_OTHER_OWNER = '--allow-other-owner';
export const ALLOW_OTHER_OWNER_HELP = 'write even though the repository belongs to another account (what this run creates belongs to you)';

/** What addRepoOptions adds to a command's options. */
export interface RepoFlags {
  repo: string;
  passphraseFile?: string;
}

/**
 * `--repo <dir>` and `--passphrase-file <file>` (read only when the repository is encrypted; the
 * environment's OLVM_BACKUP_REPO_PASSPHRASE otherwise). `required: false` for a command whose
 * subcommands take their own --repo (commander checks an ancestor's mandatory options for its
 * subcommands too): its action checks it.
 */
export function addRepoOptions(cmd: Command, o: { required?: boolean } = {}): Command {
  const withRepo = o.required === false ? cmd.option('--repo <dir>', 'repository directory (required)') : cmd.requiredOption('--repo <dir>', 'repository directory');
  return withRepo.option('--passphrase-file <file>', 'passphrase of an encrypted repository (or OLVM_BACKUP_REPO_PASSPHRASE)');
}
