/**
 * The service's configuration: the YAML file (zod), environment and flags, checked at start-up.
 * Every CLI command imports this folder (a constant, the repository passphrase) but only `serve`
 * and `setup` read a config file: so the reader and its schema (zod and yaml, some 170 modules)
 * load on the first loadConfig call, not with this index. The schema itself: ./schema.
 */
import type { LoadConfigOptions } from './load';
import type { ServiceConfig } from './schema';

export { describeConfig } from './describe';
export type { ConfigOverrides, DeepPartial, LoadConfigOptions } from './load';
export { CONFIG_BACKUP_METHODS, DEFAULTS, LOG_LEVELS, MAX_LOCK_DAYS, type ConfigBackupMethod, type LogLevel } from './defaults';
export type { ConfigFile, ServiceConfig } from './schema';
export { findS3Credentials, ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_CREDENTIALS_FILE, ENV_PROFILE, type S3CredentialSource } from './s3Credentials';
export { readPassphrase, ENV_REPO_PASSPHRASE, ENV_REPO_NEW_PASSPHRASE, type ReadPassphraseOptions } from './passphrase';

/**
 * The service's configuration: the YAML file, then the environment, then `overrides` (command-line
 * flags), validated, defaults filled, paths absolute, the secrets read (load.ts). Any problem is
 * one `CONFIG_INVALID` naming every bad key; no secret appears in it.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<ServiceConfig> {
  const load = await import('./load');
  return load.loadConfig(opts);
}
export type { S3Settings } from './s3Schema';
export { syncCacheDirOf } from './s3Load';
export type { S3Connection } from './s3Schema';
