import { createHash } from 'crypto';
import * as net from 'net';
import type { Duplex } from 'stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { AppError } from '../errors';
import type { RemoteCommandResult, RemoteCommandRunner } from '../qmp';

/** How to reach one KVM host over SSH. The host key is pinned: there is no trust on first use. */
export interface SshHostConfig {
  host: string;
  /** default 22 */
  port?: number;
  username: string;
  /** private key (OpenSSH or PEM text) */
  privateKey: string | Buffer;
  passphrase?: string;
  /**
   * The host's expected key: either its public key (`ssh-ed25519 AAAA… [comment]`, a
   * known_hosts line, or the base64 blob) or its SHA-256 fingerprint as `ssh-keygen -lf`
   * prints it (`SHA256:…`). A host presenting another key is refused.
   */
  hostKey: string;
  /** default 10 s */
  connectTimeoutMs?: number;
  /** keepalive probes; a host silent for interval × 3 is declared lost. Default 5 s. */
  keepaliveIntervalMs?: number;
  /** The connection closes after this long with nothing using it; default 30 s. */
  idleCloseMs?: number;
  /** Exec channels open at once (OpenSSH's MaxSessions defaults to 10); default 4. */
  maxConcurrentExec?: number;
}

/** Quotes one argument for a POSIX shell: everything inside single quotes is literal. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new AppError('INVALID_ARGUMENT', 'a command argument contains a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: string[]): string {
  if (argv.length === 0) throw new AppError('INVALID_ARGUMENT', 'empty command');
  return argv.map(shellQuote).join(' ');
}

/** `SHA256:<base64 without padding>` of a public key blob, as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Parses the configured pin into a matcher on the key blob the server presents. */
function hostKeyMatcher(pin: string): (key: Buffer) => boolean {
  const p = pin.trim();
  if (/^SHA256:/i.test(p)) {
    const want = `SHA256:${p.slice(7).replace(/=+$/, '')}`;
    return (key) => sha256Fingerprint(key) === want;
  }
  // "[host]:port ssh-ed25519 AAAA… comment", "ssh-ed25519 AAAA… comment" or "AAAA…"
  const blob = p.split(/\s+/).find((f) => /^AAAA[A-Za-z0-9+/]+=*$/.test(f));
  if (!blob) throw new AppError('INVALID_ARGUMENT', 'the pinned host key is neither a public key nor a SHA256 fingerprint');
  const want = Buffer.from(blob, 'base64');
  return (key) => key.equals(want);
}

interface Live {
  client: Client;
  lostListeners: Set<(err: Error) => void>;
  ended: boolean;
}

/**
 * One SSH connection to one host, shared by every VM on it: opened on first use, reopened after
 * a loss, closed when nothing used it for `idleCloseMs`. Commands are argv arrays, quoted here,
 * so VM names and paths never reach a shell unquoted.
 */
export class SshConnection implements RemoteCommandRunner {
  readonly hostLabel: string;
  private live: Live | undefined;
  private connecting: Promise<Live> | undefined;
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private execRunning = 0;
  private readonly execQueue: Array<() => void> = [];
  private readonly matches: (key: Buffer) => boolean;

  constructor(readonly config: SshHostConfig) {
    this.hostLabel = `${config.host}${config.port && config.port !== 22 ? `:${config.port}` : ''}`;
    this.matches = hostKeyMatcher(config.hostKey);
  }

  get connected(): boolean {
    return this.live !== undefined && !this.live.ended;
  }

  /** Runs a command to its end and collects its output. */
  async run(argv: string[], opts: { timeoutMs: number; signal?: AbortSignal; stdin?: string }): Promise<RemoteCommandResult> {
    const command = shellCommand(argv);
    const release = this.hold();
    try {
      await this.execSlot(opts.signal);
      try {
        const live = await this.ensure();
        return await new Promise<RemoteCommandResult>((resolve, reject) => {
          let channel: ClientChannel | undefined;
          let done = false;
          const finish = (err: Error | undefined, r?: RemoteCommandResult): void => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            opts.signal?.removeEventListener('abort', onAbort);
            live.lostListeners.delete(onLost);
            if (err) {
              channel?.close();
              reject(err);
            } else resolve(r as RemoteCommandResult);
          };
          const timer = setTimeout(
            () => finish(new AppError('TIMEOUT', `${argv[0] ?? ''} on host ${this.hostLabel} did not finish within ${opts.timeoutMs} ms`)),
            opts.timeoutMs,
          );
          const onAbort = (): void => finish(new AppError('ABORTED', `${argv[0] ?? ''} on host ${this.hostLabel} aborted`));
          const onLost = (err: Error): void => finish(err);
          opts.signal?.addEventListener('abort', onAbort, { once: true });
          live.lostListeners.add(onLost);
          live.client.exec(command, (err, ch) => {
            if (err) {
              finish(this.transportError(`cannot run ${argv[0] ?? ''}`, err));
              return;
            }
            channel = ch;
            if (done) {
              ch.close();
              return;
            }
            const out: Buffer[] = [];
            const errOut: Buffer[] = [];
            ch.on('data', (b: Buffer) => out.push(b));
            ch.stderr.on('data', (b: Buffer) => errOut.push(b));
            ch.on('close', (code: number | null | undefined) => {
              finish(undefined, {
                code: typeof code === 'number' ? code : null,
                stdout: Buffer.concat(out).toString('utf8'),
                stderr: Buffer.concat(errOut).toString('utf8'),
              });
            });
            ch.end(opts.stdin ?? undefined);
          });
        });
      } finally {
        this.execDone();
      }
    } finally {
      release();
    }
  }

  /** Runs a command and fails unless it exits 0; returns its stdout. */
  async check(argv: string[], opts: { timeoutMs?: number; signal?: AbortSignal; what: string }): Promise<string> {
    const r = await this.run(argv, { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (r.code !== 0) {
      const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ') || `exit status ${String(r.code)}`;
      throw new AppError('TOOL_FAILED', `${opts.what} on host ${this.hostLabel} failed: ${why}`, { details: { host: this.hostLabel, code: r.code } });
    }
    return r.stdout;
  }

  async stream(argv: string[], onLine: (line: string) => void, onEnd: (err: Error | undefined) => void): Promise<{ stop(): void }> {
    const command = shellCommand(argv);
    const release = this.hold();
    try {
      const live = await this.ensure();
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        live.client.exec(command, (err, c) => (err ? reject(this.transportError(`cannot run ${argv[0] ?? ''}`, err)) : resolve(c))),
      );
      let stopped = false;
      let buf = '';
      let errText = '';
      ch.on('data', (b: Buffer) => {
        buf += b.toString('utf8');
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          onLine(line);
        }
      });
      ch.stderr.on('data', (b: Buffer) => {
        errText = (errText + b.toString('utf8')).slice(-2000);
      });
      let ended = false;
      const end = (err: Error | undefined): void => {
        if (ended) return;
        ended = true;
        live.lostListeners.delete(onLost);
        release();
        if (!stopped) onEnd(err);
      };
      const onLost = (err: Error): void => end(err);
      live.lostListeners.add(onLost);
      ch.once('close', (code: number | null | undefined) =>
        end(new AppError('TOOL_FAILED', `${argv[0] ?? ''} on host ${this.hostLabel} ended (status ${String(code)}): ${errText.trim()}`)),
      );
      return {
        stop: () => {
          if (stopped) return;
          stopped = true;
          // EOF on the command's stdin, then the channel is closed: a command that watches its
          // stdin (the event listener does) ends; others get SIGPIPE on their next write
          ch.end();
          ch.close();
        },
      };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** A byte stream to a unix socket on the host (sshd's streamlocal forwarding). */
  async openUnixSocket(socketPath: string): Promise<Duplex> {
    const release = this.hold();
    try {
      const live = await this.ensure();
      const ch = await new Promise<ClientChannel>((resolve, reject) =>
        live.client.openssh_forwardOutStreamLocal(socketPath, (err, c) =>
          err
            ? reject(
                new AppError('QMP_CONNECT_FAILED', `host ${this.hostLabel} cannot open unix socket ${socketPath} for us: ${err.message}`, {
                  cause: err,
                  details: { host: this.hostLabel, socketPath },
                }),
              )
            : resolve(c),
        ),
      );
      // a lost connection fails the stream with a reason naming the host
      const onLost = (err: Error): void => {
        // ssh2's Channel.destroy() takes no reason: report it as the stream's error first
        if (ch.listenerCount('error') > 0) ch.emit('error', err);
        ch.destroy();
      };
      live.lostListeners.add(onLost);
      ch.once('close', () => {
        live.lostListeners.delete(onLost);
        release();
      });
      return ch;
    } catch (err) {
      release();
      throw err;
    }
  }

  onLost(listener: (err: Error) => void): () => void {
    const live = this.live;
    if (!live || live.ended) {
      return () => undefined;
    }
    live.lostListeners.add(listener);
    return () => {
      live.lostListeners.delete(listener);
    };
  }

  /** Keeps the connection open while the returned function is not called. */
  hold(): () => void {
    this.users++;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users--;
      if (this.users === 0 && this.live) {
        this.idleTimer = setTimeout(() => this.end(false), this.config.idleCloseMs ?? 30_000);
        this.idleTimer.unref();
      }
    };
  }

  /** Closes the connection now; users see it as lost. */
  closeNow(): void {
    this.end(true);
  }

  /** An idle close is not a loss: nothing uses the connection, the next command reopens it. */
  private end(notify: boolean): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const live = this.live;
    this.live = undefined;
    if (live && !live.ended) {
      live.ended = true;
      if (notify) this.fireLost(live, new AppError('QMP_DISCONNECTED', `ssh connection to host ${this.hostLabel} closed`));
      live.lostListeners.clear();
      live.client.end();
    }
  }

  /** Opens (or reuses) the connection; throws a coded error naming the host. */
  async connectNow(): Promise<void> {
    await this.ensure();
  }

  private async ensure(): Promise<Live> {
    if (this.live && !this.live.ended) return this.live;
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private connect(): Promise<Live> {
    return new Promise<Live>((resolve, reject) => {
      const client = new Client();
      let keyRejected = false;
      let ready = false;
      const live: Live = { client, lostListeners: new Set(), ended: false };
      // Our own socket, watched before ssh2 sees its end: users of the connection (NBD and QMP
      // streams) are told the SSH connection was lost before ssh2 quietly closes their channels.
      const sock = net.createConnection({ host: this.config.host, port: this.config.port ?? 22 });
      sock.on('close', () => {
        if (ready) this.lose(live, new AppError('QMP_DISCONNECTED', `ssh connection to host ${this.hostLabel} lost`, { details: { host: this.hostLabel } }));
      });
      const cfg: ConnectConfig = {
        sock,
        host: this.config.host,
        port: this.config.port ?? 22,
        username: this.config.username,
        privateKey: this.config.privateKey,
        readyTimeout: this.config.connectTimeoutMs ?? 10_000,
        keepaliveInterval: this.config.keepaliveIntervalMs ?? 5_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const ok = this.matches(key);
          if (!ok) keyRejected = true;
          return ok;
        },
      };
      if (this.config.passphrase !== undefined) cfg.passphrase = this.config.passphrase;
      client.on('ready', () => {
        ready = true;
        this.live = live;
        resolve(live);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (!ready) {
          reject(this.connectError(err, keyRejected));
          client.end();
          return;
        }
        this.lose(live, this.transportError('ssh connection failed', err));
      });
      client.on('close', () => {
        if (!ready) {
          reject(new AppError('HOST_UNREACHABLE', `ssh connection to host ${this.hostLabel} closed during login`, { details: { host: this.hostLabel, reason: 'UNREACHABLE' } }));
          return;
        }
        this.lose(live, new AppError('QMP_DISCONNECTED', `ssh connection to host ${this.hostLabel} lost`, { details: { host: this.hostLabel } }));
      });
      client.connect(cfg);
    });
  }

  private lose(live: Live, err: Error): void {
    if (live.ended) return;
    live.ended = true;
    if (this.live === live) this.live = undefined;
    this.fireLost(live, err);
  }

  private fireLost(live: Live, err: Error): void {
    for (const l of [...live.lostListeners]) {
      try {
        l(err);
      } catch {
        // keep notifying the others
      }
    }
    live.lostListeners.clear();
  }

  private connectError(err: Error & { level?: string }, keyRejected: boolean): AppError {
    const details = { host: this.hostLabel };
    if (keyRejected) {
      return new AppError('HOST_KEY_MISMATCH', `ssh host key of host ${this.hostLabel} does not match the pinned key: refusing to connect`, {
        details: { ...details, reason: 'HOST_KEY_MISMATCH' },
      });
    }
    if (err.level === 'client-authentication') {
      return new AppError('HOST_AUTH_FAILED', `ssh login to host ${this.hostLabel} as ${this.config.username} was refused`, {
        cause: err,
        details: { ...details, reason: 'AUTH_FAILED' },
      });
    }
    return new AppError('HOST_UNREACHABLE', `cannot reach host ${this.hostLabel} over ssh: ${err.message}`, {
      cause: err,
      details: { ...details, reason: 'UNREACHABLE' },
    });
  }

  private transportError(what: string, err: Error): AppError {
    return new AppError('QMP_DISCONNECTED', `${what} on host ${this.hostLabel}: ${err.message}`, { cause: err, details: { host: this.hostLabel } });
  }

  private execSlot(signal?: AbortSignal): Promise<void> {
    const max = this.config.maxConcurrentExec ?? 4;
    if (this.execRunning < max) {
      this.execRunning++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.execRunning++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.execQueue.indexOf(go);
        if (i >= 0) this.execQueue.splice(i, 1);
        reject(new AppError('ABORTED', `command on host ${this.hostLabel} aborted while queued`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.execQueue.push(go);
    });
  }

  private execDone(): void {
    this.execRunning--;
    this.execQueue.shift()?.();
  }
}

/** One connection per host (user@host:port), shared by every VM and backup on it. */
export class SshConnectionPool {
  private readonly connections = new Map<string, SshConnection>();

  connection(config: SshHostConfig): SshConnection {
    const key = `${config.username}@${config.host}:${config.port ?? 22}`;
    let c = this.connections.get(key);
    if (!c) {
      c = new SshConnection(config);
      this.connections.set(key, c);
    }
    return c;
  }

  closeAll(): void {
    for (const c of this.connections.values()) c.closeNow();
    this.connections.clear();
  }
}
