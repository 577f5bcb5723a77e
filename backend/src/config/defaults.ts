/**
 * The constants of the service's configuration that other layers use (the longest retention
 * lock, the log levels, the defaults), apart from the schema: importing them must not load zod
 * and yaml, which only reading a config file needs (config/index.ts).
 */

/**
 * The longest retention lock, in days (a hundred years): protection.minLockDays here, a policy's
 * lockDays (api/), what a backup commits a point with (backup/). Stated here because config/ is
 * below every layer that checks it and may import nothing above itself.
 */
export const MAX_LOCK_DAYS = 36_500;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULTS = {
  listen: { host: '127.0.0.1', port: 8780 },
  limits: { global: 4, perHost: 2 },
  authCacheSeconds: 60,
  logLevel: 'info' as LogLevel,
  engineTimeoutSeconds: 60,
  /** How long a user's permits on one object are reused (the bound: at most 60 s). */
  permitCacheSeconds: 30,
  /** Every point's retention lock at least this long (0: none), Backup now's too. */
  minLockDays: 7,
  /** Garbage collection: weekly, Sunday 04:00, in the repository's time zone. */
  gcSchedule: '0 4 * * 0',
  gcTimeZone: 'UTC',
  /** The format and the encryption of the repository the service creates when there is none. */
  repositoryFormat: 2,
  repositoryEncryption: 'none',
  /** repository.s3: the SigV4 region when none is given (Ceph RGW expects it on CreateBucket). */
  s3Region: 'us-east-1',
  /** protection: a repository on object storage requires Object Lock, in compliance mode. */
  requireObjectLock: true,
  objectLockMode: 'compliance',
  /** How backups read a VM unless a policy or Backup now says otherwise. */
  backupMethod: 'auto',
  /** A boot check's wait for a sign of life (under TCG a full distribution takes minutes). */
  bootCheckTimeoutSeconds: 300,
  /** A file-browsing session closes after 10 minutes without a request; two appliances at once. */
  fileRestoreIdleSeconds: 600,
  fileRestoreMaxSessions: 2,
} as const;

/**
 * The values of `backup.method`: backup/model.ts BACKUP_METHODS, which owns them (what each
 * means is said there). Listed here because config/ may import nothing above itself; test/unit/config.test.ts
 * checks that both lists are the same.
 */
export const CONFIG_BACKUP_METHODS = ['auto', 'qmp', 'engine'] as const;
export type ConfigBackupMethod = (typeof CONFIG_BACKUP_METHODS)[number];

/** protection.objectLockMode: how a repository on object storage locks a point's objects. */
export const OBJECT_LOCK_MODES = ['compliance', 'governance'] as const;
export type ObjectLockMode = (typeof OBJECT_LOCK_MODES)[number];

export const REPOSITORY_ENCRYPTIONS = ['none', 'aes-256-gcm'] as const;
export type RepositoryEncryption = (typeof REPOSITORY_ENCRYPTIONS)[number];
