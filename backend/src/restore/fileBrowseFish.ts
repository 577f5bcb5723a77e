/**
 * One long-running `guestfish` of a browse session: commands on its stdin, one at a time, each
 * followed by an `echo` of a marker holding a random nonce (a guest's file names cannot forge
 * it), its stdout and stderr merged in order (line-buffered by stdbuf) and cut at the marker.
 * Every command is sent with guestfish's `-` prefix so a failing one does not end the shell;
 * its error lines (`*stdin*:N: …`) become the command's error. Arguments are always quoted
 * with every byte outside printable ASCII as `\xHH`, so names with newlines or invalid UTF-8
 * pass unchanged. The appliance is launched once (about 20–30 s under TCG) and kept; the
 * process dies with ours (setpriv --pdeathsig; libguestfs' recovery process then stops QEMU).
 */
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { existsSync } from 'fs';
import { AppError } from '../errors';

const SETPRIV = '/usr/bin/setpriv';
const MAX_OUTPUT = 16 * 1024 * 1024;

export interface FishOptions {
  /** `tcg` forces QEMU's emulator (LIBGUESTFS_BACKEND_SETTINGS=force_tcg); `kvm` lets libguestfs pick. */
  accel: 'kvm' | 'tcg';
  /** Where libguestfs keeps its temporary files (the session's private directory). */
  tmpDir: string;
}

/** What a command printed, and its first error line when it failed. */
export interface FishReply {
  output: Buffer;
  error: string | undefined;
}

interface Pending {
  marker: Buffer;
  resolve: (r: FishReply) => void;
  reject: (e: Error) => void;
  /** Restarts an inactivity timeout (commands run with `idle`). */
  kick: (() => void) | undefined;
}

/** A guestfish string argument: printable ASCII as is (but `"` and `\`), every other byte `\xHH`. */
export function fishQuote(value: Buffer | string): string {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (b.includes(0)) throw new AppError('FILE_REFUSED', 'a path holds a NUL byte');
  let out = '"';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return `${out}"`;
}

/**
 * The NBD socket of an appliance, checked: guestfish takes `server:unix:<path>` unquoted up to
 * the next blank and guestmount an `nbd:///d0?socket=<path>` URI, so a work directory with a
 * blank, `?`, `#`, `&`, `%` or a quote would be read as something else. Letters, digits and
 * `./_+-` only, else INVALID_ARGUMENT naming the directory.
 */
export function checkedSocketPath(workDir: string, socket: string): string {
  if (!/^[\w/.+-]+$/.test(socket)) throw new AppError('INVALID_ARGUMENT', `the work directory ${workDir} must be a path of letters, digits and ./_+- only`);
  return socket;
}

/** Where supermin's appliance is cached: libguestfs' own default (LIBGUESTFS_CACHEDIR, else
 *  TMPDIR, else /var/tmp), kept when TMPDIR is pointed at a private directory — a fresh cache
 *  costs a rebuild of the appliance (~40 s) on every launch. */
export function applianceCache(): string {
  return process.env.LIBGUESTFS_CACHEDIR ?? process.env.TMPDIR ?? '/var/tmp';
}

export class Fish {
  private readonly nonce = randomBytes(12).toString('hex');
  private seq = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
        this.pending?.reject(new AppError('TOOL_FAILED', `guestfish ${this.exitInfo}: ${this.buffer.toString('utf8').trim().split('\n').slice(-3).join(' / ')}`));
        this.pending = undefined;
        resolve();
      });
    });
    child.stdout?.on('data', (b: Buffer) => this.onData(b));
  }

  /** Starts guestfish (no appliance yet: `add`, then `run`). TOOL_FAILED when it cannot start. */
  static async start(opts: FishOptions): Promise<Fish> {
    const env: NodeJS.ProcessEnv = { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_CACHEDIR: applianceCache(), TMPDIR: opts.tmpDir };
    if (opts.accel === 'tcg') env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg';
    else delete env.LIBGUESTFS_BACKEND_SETTINGS;
    const fish = ['stdbuf', '-oL', '-eL', 'guestfish'];
    // setpriv execs the rest (same pid): the kernel kills guestfish when this process dies;
    // sh merges stderr into stdout first so errors arrive in order with the markers
    const argv = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...fish] : fish;
    const child = spawn('/bin/sh', ['-c', 'exec "$@" 2>&1', 'sh', ...argv], { stdio: ['pipe', 'pipe', 'ignore'], env });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new AppError('TOOL_FAILED', 'guestfish cannot be started', { cause: err })));
    });
    child.stdin?.on('error', () => undefined);
    return new Fish(child);
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * Runs one command line (its name and already quoted arguments), after the ones queued
   * before it; TIMEOUT (and the process killed: its state is then unknown) when the marker does
   * not come back within `timeoutMs` — with `idle`, within `timeoutMs` of the last activity()
   * (a transfer: its length is not a measure of a hang, a stretch without bytes is).
   */
  run(line: string, timeoutMs: number, opts: { idle?: boolean } = {}): Promise<FishReply> {
    const next = this.queue.then(() => this.send(line, timeoutMs, opts.idle ?? false));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The running command (one run with `idle`) made progress: its timeout starts again. */
  activity(): void {
    this.pending?.kick?.();
  }

  /** Like run(), but a failed command is an AppError of `code` naming `what`. */
  async ok(line: string, timeoutMs: number, what: string, code: 'TOOL_FAILED' | 'FILE_UNREADABLE' = 'TOOL_FAILED'): Promise<Buffer> {
    const r = await this.run(line, timeoutMs);
    if (r.error !== undefined) throw new AppError(code, `${what}: ${r.error}`);
    return r.output;
  }

  private send(line: string, timeoutMs: number, idle: boolean): Promise<FishReply> {
    if (this.exitInfo !== undefined) return Promise.reject(new AppError('TOOL_FAILED', `the browse session's guestfish ${this.exitInfo}`));
    if (/[\r\n]/.test(line)) return Promise.reject(new AppError('INVALID_ARGUMENT', 'a guestfish command line holds a line break'));
    const marker = Buffer.from(`@@OLVM-${this.nonce}-${++this.seq}@@\n`);
    return new Promise<FishReply>((resolve, reject) => {
      const expire = (): void => {
        this.pending = undefined;
        const what = idle ? `made no progress on '${line.split(' ')[0] ?? ''}' for` : `did not finish '${line.split(' ')[0] ?? ''}' within`;
        reject(new AppError('TIMEOUT', `guestfish ${what} ${Math.round(timeoutMs / 1000)} s: the session is closed`));
        this.child.kill('SIGKILL');
      };
      let timer = setTimeout(expire, timeoutMs);
      const pending: Pending = {
        marker,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        kick: idle
          ? () => {
              clearTimeout(timer);
              timer = setTimeout(expire, timeoutMs);
            }
          : undefined,
      };
      this.pending = pending;
      this.child.stdin?.write(`-${line}\necho ${marker.toString().trim()}\n`);
    });
  }

  private onData(b: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, b]) : b;
    const p = this.pending;
    if (!p) {
      if (this.buffer.length > MAX_OUTPUT) this.buffer = this.buffer.subarray(-4096);
      return;
    }
    const at = this.buffer.indexOf(p.marker);
    if (at < 0) {
      if (this.buffer.length > MAX_OUTPUT) {
        this.pending = undefined;
        p.reject(new AppError('TOOL_FAILED', 'guestfish printed more than 16 MiB for one command: the session is closed'));
        this.child.kill('SIGKILL');
      }
      return;
    }
    const output = this.buffer.subarray(0, at);
    this.buffer = this.buffer.subarray(at + p.marker.length);
    this.pending = undefined;
    p.resolve({ output, error: errorOf(output) });
  }

  /** Ends guestfish (`exit`, SIGKILL after 10 s); waits for it. Idempotent. */
  async close(): Promise<void> {
    if (this.exitInfo === undefined) {
      this.child.stdin?.end('exit\n');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

/** The first error line guestfish printed (`*stdin*:N: libguestfs: error: …`, `error: …`). */
function errorOf(output: Buffer): string | undefined {
  for (const line of output.toString('utf8').split('\n')) {
    const m = /^\*stdin\*:\d+: (?:libguestfs: error: )?(.*)$/.exec(line) ?? /^(error: .*)$/.exec(line);
    if (m) return (m[1] ?? '').trim();
  }
  return undefined;
}
