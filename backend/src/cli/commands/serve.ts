import type { Command } from 'commander';
import { describeConfig, loadConfig, type ConfigOverrides, type ServiceConfig } from '../../config';
import { describeError } from '../../errors';
import type { Logger } from '../../util/log';

interface ServeOptions {
  config?: string;
  dataDir?: string;
  engineUrl?: string;
  engineUser?: string;
  enginePasswordFile?: string;
  engineCa?: string;
  qmpDir?: string;
  hosts?: string;
  listenHost?: string;
  port?: string;
  corsOrigin?: string[];
  limitGlobal?: string;
  limitPerHost?: string;
  logLevel?: string;
  minLockDays?: string;
  backupAdmin?: string[];
  scrapeTokenFile?: string;
  gcSchedule?: string;
  permitCacheSeconds?: string;
  heartbeatSeconds?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the backup service the admin-portal plugin talks to (REST + WebSocket)')
    .option('--config <file>', 'YAML config file (see packaging/config.example.yaml); flags override it')
    .option('--data-dir <dir>', 'where the repository, catalog and scratch space live by default')
    .option('--engine-url <url>', 'engine base URL, https://<fqdn>/ovirt-engine')
    .option('--engine-user <user>', 'service account, e.g. olvm-backup@internal')
    .option('--engine-password-file <file>', "file holding the service account's password")
    .option('--engine-ca <file>', "the engine's CA certificate (PEM)")
    .option('--qmp-dir <dir>', 'local host link: the QMP socket of a VM is <dir>/<vm id>.qmp')
    .option('--hosts <file>', 'host directory (JSON, see backend/src/hosts/HOSTS.md)')
    .option('--listen-host <host>', 'address to listen on')
    .option('--port <port>', 'port to listen on (0: any free port)')
    .option('--cors-origin <origin...>', 'origin(s) allowed to call the API (the engine, https://<fqdn>)')
    .option('--limit-global <n>', 'backups running at once in all')
    .option('--limit-per-host <n>', 'backups running at once per KVM host')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--min-lock-days <n>', 'every restore point is committed locked at least this many days (0: no minimum)')
    .option('--backup-admin <name...>', 'engine user (name@domain) or group name administering backups like a SuperUser')
    .option('--scrape-token-file <file>', 'file with the bearer token for /metrics and /health details')
    .option('--gc-schedule <cron|off>', 'when unused chunks are removed (5-field cron, or off)')
    .option('--permit-cache-seconds <n>', "how long a user's permits on one object are reused (1-60)")
    .option('--heartbeat-seconds <n>', 'WebSocket pings and re-checks of what each user may see (5-60)')
    .action(async (o: ServeOptions) => {
      const config = await loadConfig({ ...(o.config ? { file: o.config } : {}), overrides: overridesOf(o) });
      // the whole service loads here, not when the CLI registers its commands
      const [{ startService }, { createLogger }, { productVersion }] = await Promise.all([import('../../main'), import('../../util/log'), import('../../util/version')]);
      const log = createLogger({ level: config.log.level, name: 'olvm-backup' });
      const service = await startService(config, log, productVersion());
      const reloader = configReloader(o, config, log);
      const onHup = (): void => reloader();
      process.on('SIGHUP', onHup);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          process.off('SIGHUP', onHup);
          process.on('SIGHUP', () => log.warn('SIGHUP while stopping: ignored'));
          log.info({ signal }, 'stopping: running jobs are interrupted at a safe point');
          service.close().then(
            () => {
              log.info('stopped');
              resolve();
            },
            (err: unknown) => {
              log.error({ err: describeError(err) }, 'stop failed');
              process.exitCode = 1;
              resolve();
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}

/**
 * SIGHUP (systemctl reload): re-reads and validates the config file. The log level applies at
 * once; every other changed key is named in the log as needing a restart, because the parts
 * that read them (CORS checks, the job queue's limits, listeners, engine and host links) keep
 * the values they were built with. An invalid file changes nothing. Reloads run one at a time.
 */
function configReloader(o: ServeOptions, initial: ServiceConfig, log: Logger): () => void {
  let running = initial;
  let chain = Promise.resolve();
  const reload = async (): Promise<void> => {
    if (!o.config) {
      log.warn({ signal: 'SIGHUP' }, 'reload: the service was started without --config, there is no file to re-read');
      return;
    }
    let next: ServiceConfig;
    try {
      next = await loadConfig({ file: o.config, overrides: overridesOf(o) });
    } catch (err) {
      log.error({ signal: 'SIGHUP', err: describeError(err) }, 'reload refused: the config file is invalid, the running configuration stays');
      return;
    }
    for (const w of next.warnings) log.warn(w);
    const changed = changedKeys(running, next);
    const applied = changed.filter((k) => k === 'log.level');
    const needRestart = changed.filter((k) => k !== 'log.level');
    if (applied.length > 0) log.level = next.log.level;
    running = { ...running, log: next.log };
    log.debug({ config: describeConfig(next) }, 'the configuration file as re-read');
    log.info(
      { signal: 'SIGHUP', applied, needRestart },
      needRestart.length > 0 ? `configuration re-read; needs a restart to apply: ${needRestart.join(', ')}` : 'configuration reloaded',
    );
  };
  return () => {
    chain = chain.then(reload, reload);
  };
}

/** Dotted keys whose values differ (lists compared whole); secrets compared, never shown. */
function changedKeys(a: ServiceConfig, b: ServiceConfig): string[] {
  const flat = (v: unknown, prefix: string, out: Map<string, string>): Map<string, string> => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) flat(x, prefix ? `${prefix}.${k}` : k, out);
    else out.set(prefix, JSON.stringify(v ?? null));
    return out;
  };
  const strip = (c: ServiceConfig): Partial<ServiceConfig> => {
    const rest: Partial<ServiceConfig> = { ...c };
    delete rest.warnings;
    delete rest.file;
    return rest;
  };
  const fa = flat(strip(a), '', new Map());
  const fb = flat(strip(b), '', new Map());
  return [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => fa.get(k) !== fb.get(k)).sort();
}

function overridesOf(o: ServeOptions): ConfigOverrides {
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const out: ConfigOverrides = {};
  if (o.dataDir) out.dataDir = o.dataDir;
  const engine = { url: o.engineUrl, user: o.engineUser, passwordFile: o.enginePasswordFile, caFile: o.engineCa };
  if (Object.values(engine).some((v) => v !== undefined)) out.engine = strip(engine);
  const listen = { host: o.listenHost, port: num(o.port), heartbeatSeconds: num(o.heartbeatSeconds) };
  if (Object.values(listen).some((v) => v !== undefined)) out.listen = strip(listen);
  if (o.corsOrigin) out.cors = { origins: o.corsOrigin };
  if (o.qmpDir) out.hosts = { qmpDir: o.qmpDir };
  if (o.hosts) out.hosts = { directory: o.hosts };
  const limits = { global: num(o.limitGlobal), perHost: num(o.limitPerHost) };
  if (Object.values(limits).some((v) => v !== undefined)) out.limits = strip(limits);
  if (o.logLevel) out.log = { level: o.logLevel as NonNullable<ConfigOverrides['log']>['level'] };
  if (o.minLockDays !== undefined) out.protection = { minLockDays: num(o.minLockDays) };
  const auth = { backupAdmins: o.backupAdmin, scrapeTokenFile: o.scrapeTokenFile, permitCacheSeconds: num(o.permitCacheSeconds) };
  if (Object.values(auth).some((v) => v !== undefined)) out.auth = strip(auth);
  if (o.gcSchedule !== undefined) out.repository = { gcSchedule: o.gcSchedule };
  return out;
}

function strip<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
