import { z } from 'zod';
import { repositoryS3, syncS3, type S3Connection, type S3Settings } from './s3Schema';
import { CONFIG_BACKUP_METHODS, DEFAULTS, LOG_LEVELS, MAX_LOCK_DAYS, OBJECT_LOCK_MODES, REPOSITORY_ENCRYPTIONS, type ObjectLockMode, type ConfigBackupMethod, type LogLevel, type RepositoryEncryption } from './defaults';

/**
 * The service's configuration file (YAML), as written by the admin: every object strict, so a
 * misspelt key is an error rather than a silently ignored setting. Defaults and path resolution
 * happen in `load.ts`; this file says only what a valid file looks like. Messages are written for
 * the admin and prefixed with the key's dotted path by the loader.
 */

/** The message for a present-but-wrong value; a missing required key says so instead. */
const says = (text: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : text);

const path = z.string({ error: says('must be a path (a string)') }).min(1, { error: 'must not be empty' });
const positiveInt = z.number({ error: says('must be a positive integer') }).int().positive();
const mapping = { error: says('must be a mapping of keys') };

/** `scheme://user:secret@host` must never be accepted: the secret would end up in logs. */
const hasCredentials = (u: URL) => u.username !== '' || u.password !== '';

const engineUrl = z.string({ error: says('must be a URL like https://engine.example.com/ovirt-engine') }).superRefine((s, ctx) => {
  const u = URL.canParse(s) ? new URL(s) : undefined;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL like https://engine.example.com/ovirt-engine' });
  } else if (hasCredentials(u)) {
    ctx.addIssue({ code: 'custom', message: 'must not contain a user or password (use engine.user and engine.passwordFile)' });
  } else if (u.search !== '' || u.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
  }
});

const ORIGIN_HINT = 'must be an origin like https://engine.example.com (no path)';

const origin = z.string({ error: says(ORIGIN_HINT) }).superRefine((s, ctx) => {
  if (s.includes('*')) {
    ctx.addIssue({ code: 'custom', message: 'wildcards are not allowed: list each origin (scheme://host[:port])' });
    return;
  }
  const u = URL.canParse(s) ? new URL(s) : undefined;
  const bad = !u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.pathname !== '/' || u.search !== '' || u.hash !== '';
  if (bad || !/^[a-z]+:\/\/[^/]+\/?$/i.test(s)) ctx.addIssue({ code: 'custom', message: ORIGIN_HINT });
  else if (hasCredentials(u)) ctx.addIssue({ code: 'custom', message: ORIGIN_HINT });
});

const engine = z.strictObject(
  {
    url: engineUrl,
    user: z.string({ error: says('must be a user name like olvm-backup@internal') }).min(1, { error: 'must not be empty' }),
    passwordFile: path.optional(),
    caFile: path.optional(),
    timeoutSeconds: positiveInt.optional(),
  },
  mapping,
);

const listen = z
  .strictObject(
    {
      host: z.string({ error: says('must be a host name or address') }).min(1, { error: 'must not be empty' }).optional(),
      port: z.number({ error: says('must be a port number (0-65535)') }).int().min(0).max(65535).optional(),
      // WebSocket pings (and the re-check of what each user may see): below a proxy's idle timeout
      heartbeatSeconds: z.number({ error: says('must be a whole number of seconds from 5 to 60') }).int().min(5).max(60).optional(),
      tlsCert: path.optional(),
      tlsKey: path.optional(),
    },
    mapping,
  )
  .superRefine((l, ctx) => {
    if (l.tlsCert !== undefined && l.tlsKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tlsKey'], message: 'is required when listen.tlsCert is set (TLS needs both)' });
    }
    if (l.tlsKey !== undefined && l.tlsCert === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tlsCert'], message: 'is required when listen.tlsKey is set (TLS needs both)' });
    }
  });

const limits = z
  .strictObject({ global: positiveInt.optional(), perHost: positiveInt.optional() }, mapping)
  .superRefine((l, ctx) => {
    const global = l.global ?? DEFAULTS.limits.global;
    if (l.perHost !== undefined && l.perHost > global) {
      ctx.addIssue({ code: 'custom', path: ['perHost'], message: `must not exceed limits.global (${global})` });
    }
  });

const hosts = z
  .strictObject({ qmpDir: path.optional(), directory: path.optional() }, mapping)
  .superRefine((h, ctx) => {
    if ((h.qmpDir === undefined) === (h.directory === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: `${h.qmpDir === undefined ? 'needs' : 'takes'} exactly one of hosts.qmpDir (VMs on this machine) and hosts.directory (a hosts file)`,
      });
    }
  });

function isRegExp(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

const section = <T extends z.core.$ZodLooseShape>(shape: T) => z.strictObject(shape, mapping).optional();

export const configFileSchema = z.strictObject(
  {
    dataDir: path.optional(),
    engine,
    repository: section({
      path: path.optional(),
      // 5-field cron of the scheduled garbage collection; "off": only `olvm-backup gc` by hand
      gcSchedule: z.string({ error: says('must be a 5-field cron expression or "off"') }).min(1).optional(),
      gcTimeZone: z.string({ error: says('must be an IANA time zone name') }).min(1).optional(),
      // the repository the service creates when there is none (an existing one keeps its own)
      format: z.literal([1, 2], { error: says('must be 1 or 2') }).optional(),
      encryption: z.enum(REPOSITORY_ENCRYPTIONS, { error: says(`must be one of ${REPOSITORY_ENCRYPTIONS.join(', ')}`) }).optional(),
      // a file holding the passphrase of an encrypted repository
      passphraseFile: path.optional(),
      // the repository on object storage (S3), `path` replaced by its cache directory
      s3: repositoryS3.optional(),
    }),
    // policies' syncTo: the connection to s3:// destinations, and where their caches live
    sync: section({ s3: syncS3.optional(), cacheDir: path.optional() }),
    catalog: section({ path: path.optional() }),
    scratch: section({ path: path.optional() }),
    listen: listen.optional(),
    cors: section({ origins: z.array(origin, { error: says('must be a list of origins') }).optional() }),
    limits: limits.optional(),
    hosts,
    auth: section({
      cacheSeconds: positiveInt.optional(),
      permitCacheSeconds: z.number({ error: says('must be a whole number of seconds from 1 to 60') }).int().min(1).max(60).optional(),
      // engine users (user@domain) and groups (their name) who administer backups like a SuperUser
      backupAdmins: z.array(z.string({ error: says('must be an engine user or group name') }).min(1), { error: says('must be a list of names') }).optional(),
      // a file holding the bearer token Prometheus sends for /metrics and /health details
      scrapeTokenFile: path.optional(),
    }),
    backup: section({
      // how a backup reads a VM unless its policy or Backup now says otherwise
      method: z.enum(CONFIG_BACKUP_METHODS, { error: says(`must be one of ${CONFIG_BACKUP_METHODS.join(', ')}`) }).optional(),
    }),
    protection: section({
      minLockDays: z.number({ error: says('must be a whole number of days (0: no minimum)') }).int().min(0).max(MAX_LOCK_DAYS).optional(),
      // repository.s3: refuse to start on a bucket without Object Lock (default true)
      requireObjectLock: z.boolean({ error: says('must be true or false') }).optional(),
      // the Object Lock mode of retention locks: compliance (nobody can shorten or delete) or governance
      objectLockMode: z.enum(OBJECT_LOCK_MODES, { error: says(`must be one of ${OBJECT_LOCK_MODES.join(', ')}`) }).optional(),
    }),
    bootCheck: section({
      // how long a boot check waits for a sign of life (TCG boots are slow: minutes, not seconds)
      timeoutSeconds: z.number({ error: says('must be a whole number of seconds from 10 to 3600') }).int().min(10).max(3600).optional(),
      // the console line that says the guest is up (a regular expression); default: a login
      // prompt, systemd's multi-user or graphical target, or OLVM-BOOT-OK
      expect: z
        .string({ error: says('must be a regular expression (a string)') })
        .min(1)
        .refine((s) => isRegExp(s), { error: 'must be a valid regular expression' })
        .optional(),
    }),
    fileRestore: section({
      // a file-browsing session's appliance is closed after this long without a request
      idleSeconds: z.number({ error: says('must be a whole number of seconds from 10 to 86400') }).int().min(10).max(86400).optional(),
      // appliances running at once (each a QEMU of ~1 GiB and a core under TCG)
      maxSessions: z.number({ error: says('must be a whole number from 1 to 32') }).int().min(1).max(32).optional(),
    }),
    log: section({ level: z.enum(LOG_LEVELS, { error: says(`must be one of ${LOG_LEVELS.join(', ')}`) }).optional() }),
  },
  mapping,
);

/** What a config file may hold (every default left out). */
export type ConfigFile = z.input<typeof configFileSchema>;
export type ParsedConfigFile = z.output<typeof configFileSchema>;

/** Keys holding paths: resolved against the config file's directory (or the working directory). */
export const PATH_KEYS = [
  'dataDir',
  'engine.passwordFile',
  'engine.caFile',
  'repository.path',
  'repository.passphraseFile',
  'repository.s3.caFile',
  'repository.s3.credentialsFile',
  'repository.s3.cacheDir',
  'sync.s3.caFile',
  'sync.s3.credentialsFile',
  'sync.cacheDir',
  'catalog.path',
  'scratch.path',
  'listen.tlsCert',
  'listen.tlsKey',
  'hosts.qmpDir',
  'hosts.directory',
  'auth.scrapeTokenFile',
] as const;

/** The configuration the service runs with: every default filled, every path absolute. */
export interface ServiceConfig {
  /** the config file read (absolute), when there was one */
  file: string | undefined;
  dataDir: string;
  engine: {
    /** base URL without a trailing slash, e.g. `https://engine.example.com/ovirt-engine` */
    url: string;
    user: string;
    /** the secret itself: never log it; `describeConfig` hides it */
    password: string;
    /** where the password came from, when a file (undefined: OLVM_BACKUP_ENGINE_PASSWORD) */
    passwordFile: string | undefined;
    caFile: string | undefined;
    timeoutSeconds: number;
  };
  /** gcSchedule: a 5-field cron in gcTimeZone, or null ("off"). */
  repository: {
    path: string;
    gcSchedule: string | null;
    gcTimeZone: string;
    /** the format and encryption of the repository the service creates when there is none */
    format: 1 | 2;
    encryption: RepositoryEncryption;
    /** the passphrase of an encrypted repository, the secret itself: never log it; `describeConfig` hides it */
    passphrase: string | undefined;
    /** where the passphrase came from, when a file (undefined: OLVM_BACKUP_REPO_PASSPHRASE, or none) */
    passphraseFile: string | undefined;
    /** the repository on object storage; `path` is then its cache directory. null: `path` is the repository */
    s3: S3Settings | null;
  };
  /** A policy's `syncTo: s3://BUCKET/PREFIX`: how the service reaches that store (sync.s3, else
   *  repository.s3's connection; null: neither, such a syncTo is refused) and the directory under
   *  which each destination has its own cache. */
  sync: { s3: S3Connection | null; cacheDir: string };
  catalog: { path: string };
  scratch: { path: string };
  listen: { host: string; port: number; heartbeatSeconds: number; tls: { cert: string; key: string } | undefined };
  /** exact origins (`scheme://host[:port]`); default: the engine URL's origin */
  cors: { origins: string[] };
  limits: { global: number; perHost: number };
  hosts: { kind: 'local'; qmpDir: string } | { kind: 'directory'; directory: string };
  auth: {
    cacheSeconds: number;
    permitCacheSeconds: number;
    /** Engine user and group names, compared without case. */
    backupAdmins: string[];
    /** The scrape token itself (read from scrapeTokenFile): never log it. */
    scrapeToken: string | undefined;
  };
  /** method: the repository's default backup method (a policy's or a Backup now's wins). */
  backup: { method: ConfigBackupMethod };
  /** requireObjectLock and objectLockMode apply to a repository on object storage. */
  protection: { minLockDays: number; requireObjectLock: boolean; objectLockMode: ObjectLockMode };
  /** Boot checks run as jobs: how long each waits, and the console line that means "up" (a
   *  regular expression's source; null: the built-in default). */
  bootCheck: { timeoutSeconds: number; expect: string | null };
  /** File-level restore in the portal: idle sessions close after idleSeconds; at most
   *  maxSessions appliances at once. */
  fileRestore: { idleSeconds: number; maxSessions: number };
  log: { level: LogLevel };
  /** things worth a warning at start-up (e.g. a password file readable by others) */
  warnings: string[];
}
