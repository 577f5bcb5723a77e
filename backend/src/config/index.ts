/** The service's configuration: the YAML file (zod), environment and flags, checked at start-up. */
export { describeConfig } from './describe';
export { loadConfig, type ConfigOverrides, type DeepPartial, type LoadConfigOptions } from './load';
export { configFileSchema, DEFAULTS, LOG_LEVELS, MAX_LOCK_DAYS, type ConfigFile, type LogLevel, type ServiceConfig } from './schema';
export { readPassphrase, ENV_REPO_PASSPHRASE, ENV_REPO_NEW_PASSPHRASE, type ReadPassphraseOptions } from './passphrase';
