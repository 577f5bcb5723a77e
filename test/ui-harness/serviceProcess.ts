import { spawn, type ChildProcess } from 'child_process';
import { createWriteStream, type WriteStream } from 'fs';
import * as path from 'path';

const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

export interface ServiceOptions {
  dataDir: string;
  engineUrl: string;
  engineUser: string;
  enginePasswordFile: string;
  engineCaFile?: string;
  qmpDir: string;
  corsOrigin: string;
  /** 0 = any free port; a restart reuses the port it got, so the plugin's serviceUrl stays valid. */
  port?: number;
  /** The service's pino lines go here (appended). */
  logFile: string;
  /** `--min-lock-days`: points are committed locked at least this long (the service's default
   *  is 7; a test that prunes passes 0). */
  minLockDays?: number;
  /** `--backup-admin`: engine users or groups administering backups like a SuperUser. */
  backupAdmins?: string[];
  startTimeoutMs?: number;
}

/**
 * The real backup service (`olvm-backup serve`) as a child process, as the e2e test and the
 * demo run it: started, stopped (SIGTERM) and started again on the same port and data dir.
 */
export class ServiceProcess {
  private child: ChildProcess | null = null;
  private log: WriteStream | null = null;
  private port: number;
  url = '';

  constructor(private readonly opts: ServiceOptions) {
    this.port = opts.port ?? 0;
  }

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<string> {
    if (this.child) return this.url;
    const o = this.opts;
    const args = [
      CLI, 'serve',
      '--data-dir', o.dataDir,
      '--engine-url', o.engineUrl,
      '--engine-user', o.engineUser,
      '--engine-password-file', o.enginePasswordFile,
      ...(o.engineCaFile ? ['--engine-ca', o.engineCaFile] : []),
      '--qmp-dir', o.qmpDir,
      '--listen-host', '127.0.0.1',
      '--port', String(this.port),
      '--cors-origin', o.corsOrigin,
      ...(o.minLockDays !== undefined ? ['--min-lock-days', String(o.minLockDays)] : []),
      ...(o.backupAdmins && o.backupAdmins.length > 0 ? ['--backup-admin', ...o.backupAdmins] : []),
    ];
    this.log ??= createWriteStream(o.logFile, { flags: 'a' });
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const log = this.log;
    child.stderr?.on('data', (c: Buffer) => log.write(c));
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      let stderr = '';
      const timer = setTimeout(() => done(new Error(`the backup service did not say "listening" within ${(o.startTimeoutMs ?? 60_000) / 1000} s (log: ${o.logFile})`)), o.startTimeoutMs ?? 60_000);
      const done = (err: Error | null, u?: string): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve(u ?? '');
      };
      const onExit = (code: number | null): void => done(new Error(`the backup service exited with ${code} before listening: ${stderr.trim().slice(-2000)} (log: ${o.logFile})`));
      child.on('exit', onExit);
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout?.on('data', (c: Buffer) => {
        log.write(c);
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const j = JSON.parse(line) as { msg?: string; url?: string };
            if (j.msg === 'listening' && j.url) done(null, j.url);
          } catch {
            // not a JSON line
          }
        }
      });
    }).catch((err: unknown) => {
      child.kill('SIGKILL');
      this.child = null;
      throw err;
    });
    child.stdout?.on('data', (c: Buffer) => log.write(c));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    this.url = url;
    this.port = Number(new URL(url).port);
    return url;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((r) => (this.log ? this.log.end(() => r()) : r()));
    this.log = null;
  }
}
