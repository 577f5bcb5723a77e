/**
 * The flags of the commands that work on a repository, defined once: registering them must stay
 * cheap (main.ts registers every command at each start), so this module imports nothing but
 * commander's types; what the flags do is in repoSpec.ts, repoOpen.ts and repoOwner.ts, loaded
 * by an action. A repository is a directory or `s3://BUCKET/PREFIX` (an object store with a
 * local cache directory); the --s3-* flags and --cache say how the store is reached.
 */
import type { Command } from 'commander';

export const ALLOW_OTHER_OWNER = '--allow-other-owner';
export const ALLOW_OTHER_OWNER_HELP = 'write even though the repository belongs to another account (what this run creates belongs to you)';

/** The default SigV4 region (Ceph RGW expects it on CreateBucket). */
export const DEFAULT_S3_REGION = 'us-east-1';

/** How an s3:// repository is reached (addS3Options); none of them holds a secret. */
export interface S3Flags {
  s3Endpoint?: string;
  s3Ca?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3VirtualHost?: boolean;
  s3Profile?: string;
  cache?: string;
}

/** The flag of each S3Flags key, for the messages that name them. */
export const S3_FLAG_NAMES: Record<keyof S3Flags, string> = {
  s3Endpoint: '--s3-endpoint',
  s3Ca: '--s3-ca',
  s3Region: '--s3-region',
  s3PathStyle: '--s3-path-style',
  s3VirtualHost: '--s3-virtual-host',
  s3Profile: '--s3-profile',
  cache: '--cache',
};

/** What addRepoOptions adds to a command's options. */
export interface RepoFlags extends S3Flags {
  repo: string;
  passphraseFile?: string;
}

export const REPO_HELP = 'repository: a directory, or s3://BUCKET/PREFIX on object storage (with --s3-endpoint …)';

/**
 * `--repo <dir|s3://bucket/prefix>`, the S3 flags and `--passphrase-file <file>` (read only when
 * the repository is encrypted; the environment's OLVM_BACKUP_REPO_PASSPHRASE otherwise).
 * `required: false` for a command whose subcommands take their own --repo (commander checks an
 * ancestor's mandatory options for its subcommands too): its action checks it.
 */
export function addRepoOptions(cmd: Command, o: { required?: boolean } = {}): Command {
  const withRepo = o.required === false ? cmd.option('--repo <location>', `${REPO_HELP} (required)`) : cmd.requiredOption('--repo <location>', REPO_HELP);
  return addS3Options(withRepo.option('--passphrase-file <file>', 'passphrase of an encrypted repository (or OLVM_BACKUP_REPO_PASSPHRASE)'));
}

/**
 * The flags of an s3:// repository. Credentials are never a flag's value (`ps` shows those):
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the AWS credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) with --s3-profile.
 */
export function addS3Options(cmd: Command): Command {
  return addS3StoreOptions(cmd, 's3:// repository').option(
    '--cache <dir>',
    's3:// repository: the local cache directory (default ~/.cache/olvm-backup/s3/BUCKET/PREFIX, /var/cache/olvm-backup/s3/… for root)',
  );
}

/** The S3 flags but the cache: `repo sync` shares them between its two ends, each with its own
 *  cache option. `who` starts each help text (`s3:// repository`, `s3:// ends`). */
export function addS3StoreOptions(cmd: Command, who: string): Command {
  return cmd
    .option('--s3-endpoint <url>', `${who}: the store, e.g. https://rgw.example:7480 (default: AWS S3 of --s3-region)`)
    .option('--s3-ca <file>', `${who}: PEM file of the private CA that signed the endpoint's certificate`)
    .option('--s3-region <region>', `${who}: SigV4 region (default ${DEFAULT_S3_REGION})`)
    .option('--s3-path-style', `${who}: path-style addressing, endpoint/bucket/key (the default with --s3-endpoint)`)
    .option('--s3-virtual-host', `${who}: virtual-host addressing, bucket.endpoint/key (the default without --s3-endpoint)`)
    .option('--s3-profile <name>', `${who}: profile of the AWS credentials file (default AWS_PROFILE or "default"); credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or that file, never from a flag`);
}
