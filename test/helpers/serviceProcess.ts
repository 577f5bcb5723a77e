import { spawn, type ChildProcess } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { WebSocket } from 'ws';
import type { ServerMessage } from '../../backend/src/api/contract';
import { EngineTransport } from '../../backend/src/engine/http';
import { passwordGrant } from '../../backend/src/engine/sso';
import type { EngineSim, SimUserKey } from '../engine-sim';

const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

export interface ServiceProcess {
  url: string;
  proc: ChildProcess;
  /** Everything the service logged (pino JSON lines). */
  logs(): string;
  /** SIGTERM and wait for the exit; its exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash would: nothing of the service's own cleanup runs. */
  kill(): Promise<void>;
}

export interface ServiceProcessOptions {
  sim: EngineSim;
  dataDir: string;
  corsOrigins?: string[];
  extraArgs?: string[];
  startTimeoutMs?: number;
  /** protection.minLockDays (default here 0, so tests that prune can; the product's default is 7). */
  minLockDays?: number;
  /** A config file's text (YAML), written into dataDir and given with --config; flags override it. */
  config?: string;
  /** Set in the service's environment, beside this process's (e.g. OLVM_BACKUP_REPO_PASSPHRASE); undefined: removed. */
  env?: Record<string, string | undefined>;
}

/** `olvm-backup serve` as a real child process against the engine simulator, on a free port. */
export async function startServiceProcess(o: ServiceProcessOptions): Promise<ServiceProcess> {
  const proc = await spawnService(o);
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  proc.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start in time; its output:\n${out}`)), o.startTimeoutMs ?? 30_000);
    const check = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('"listening"')) continue;
        const m = /"url":"([^"]+)"/.exec(line);
        if (m?.[1]) {
          clearTimeout(timer);
          proc.stdout?.off('data', check);
          resolve(m[1]);
          return;
        }
      }
    };
    proc.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited (${code}) before listening; its output:\n${out}`));
    });
  });
  return {
    url,
    proc,
    logs: () => out,
    stop: async () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** A service that must refuse to start: its exit code and everything it wrote (stdout and stderr). */
export async function serviceStartFailure(o: ServiceProcessOptions): Promise<{ code: number | null; output: string }> {
  const proc = await spawnService(o);
  let output = '';
  proc.stdout?.on('data', (b: Buffer) => (output += b.toString('utf8')));
  proc.stderr?.on('data', (b: Buffer) => (output += b.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the service did not exit in time; its output:\n${output}`));
    }, o.startTimeoutMs ?? 30_000);
    proc.once('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, output };
}

/** Starts `olvm-backup serve` with the options' flags (see ServiceProcessOptions). */
async function spawnService(o: ServiceProcessOptions): Promise<ChildProcess> {
  await fs.mkdir(o.dataDir, { recursive: true });
  const pw = path.join(o.dataDir, 'engine-password');
  await fs.writeFile(pw, `${o.sim.users.admin.password}\n`, { mode: 0o600 });
  const configFile = path.join(o.dataDir, 'config.yaml');
  if (o.config !== undefined) await fs.writeFile(configFile, o.config);
  const args = [
    CLI,
    'serve',
    ...(o.config !== undefined ? ['--config', configFile] : []),
    '--data-dir',
    o.dataDir,
    '--engine-url',
    o.sim.baseUrl,
    '--engine-user',
    o.sim.users.admin.name,
    '--engine-password-file',
    pw,
    ...(o.sim.caFile ? ['--engine-ca', o.sim.caFile] : []),
    '--qmp-dir',
    o.sim.qmpDir,
    '--listen-host',
    '127.0.0.1',
    '--port',
    '0',
    ...(o.corsOrigins ? ['--cors-origin', ...o.corsOrigins] : []),
    '--min-lock-days',
    String(o.minLockDays ?? 0),
    // a collection on its own schedule would race what a test counts
    '--gc-schedule',
    'off',
    ...(o.extraArgs ?? []),
  ];
  const env = { ...process.env, ...o.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
}

/** An SSO token for a simulator user, by password grant (what WebAdmin's login gives). */
export async function ssoToken(sim: EngineSim, who: SimUserKey): Promise<string> {
  const u = sim.users[who];
  const transport = new EngineTransport({ caFile: sim.caFile });
  try {
    const t = await passwordGrant(transport, sim.baseUrl, { user: u.name, password: u.password }, AbortSignal.timeout(20_000));
    return t.accessToken;
  } finally {
    transport.close();
  }
}

/** A JSON client for the service's API. */
export function apiClient(url: string, token?: string) {
  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    get: (p: string) => call('GET', p),
    post: (p: string, body?: unknown, headers?: Record<string, string>) => call('POST', p, body, headers),
    raw: call,
  };
}

/** A WebSocket on /api/v1/events collecting every message, with a wait-for helper. */
export class EventsClient {
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.messages.push(JSON.parse(d.toString('utf8')) as ServerMessage);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
  }

  static async open(url: string, token: string | null, headers: Record<string, string> = {}): Promise<EventsClient> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/events`, { headers });
    const c = new EventsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (token !== null) ws.send(JSON.stringify({ type: 'auth', token }));
    return c;
  }

  /** Resolves with the first message (from the start) that matches, or rejects on timeout. */
  async waitFor<T extends ServerMessage>(pred: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  async waitFor(pred: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  async waitFor(pred: (m: ServerMessage) => boolean, timeoutMs = 60_000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages.find(pred);
      if (hit) return hit;
      if (this.closeCode !== undefined) throw new Error(`websocket closed (${this.closeCode}) before the expected message; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a websocket message; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error('websocket was not closed in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.closeCode;
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
