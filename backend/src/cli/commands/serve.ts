import type { Command } from 'commander';
import { loadConfig, type ConfigOverrides } from '../../config';
import { describeError } from '../../errors';
import { startService } from '../../main';
import { createLogger } from '../../util/log';
import { productVersion } from '../../util/version';

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
    .action(async (o: ServeOptions) => {
      const config = await loadConfig({ ...(o.config ? { file: o.config } : {}), overrides: overridesOf(o) });
      const log = createLogger({ level: config.log.level, name: 'olvm-backup' });
      const service = await startService(config, log, productVersion());
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
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

function overridesOf(o: ServeOptions): ConfigOverrides {
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const out: ConfigOverrides = {};
  if (o.dataDir) out.dataDir = o.dataDir;
  const engine = { url: o.engineUrl, user: o.engineUser, passwordFile: o.enginePasswordFile, caFile: o.engineCa };
  if (Object.values(engine).some((v) => v !== undefined)) out.engine = strip(engine);
  const listen = { host: o.listenHost, port: num(o.port) };
  if (Object.values(listen).some((v) => v !== undefined)) out.listen = strip(listen);
  if (o.corsOrigin) out.cors = { origins: o.corsOrigin };
  if (o.qmpDir) out.hosts = { qmpDir: o.qmpDir };
  if (o.hosts) out.hosts = { directory: o.hosts };
  const limits = { global: num(o.limitGlobal), perHost: num(o.limitPerHost) };
  if (Object.values(limits).some((v) => v !== undefined)) out.limits = strip(limits);
  if (o.logLevel) out.log = { level: o.logLevel as NonNullable<ConfigOverrides['log']>['level'] };
  return out;
}

function strip<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
