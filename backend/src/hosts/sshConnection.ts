// One SSH connection per host and its life: opened on first use, shared, reopened after a loss,
// closed when idle; commands, line streams and unix-socket channels run on it (sshExec.ts,
// sshLogin.ts hold the parts that do not depend on the connection's life).
import type { Duplex } from 'stream';
import type { ClientChannel } from 'ssh2';
import { AppError } from '../errors';
import type { RemoteCommandResult, RemoteCommandRunner } from '../qmp';
import { hostKeyMatcher } from './hostKeyPin';
import { shellCommand } from './shellQuote';
import { collectOutput, ExecSlots, streamLines } from './sshExec';
import { login, type Live, type SshHostConfig } from './sshLogin';

export type { SshHostConfig } from './sshLogin';

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
  private readonly slots: ExecSlots;
  private readonly matches: (key: Buffer) => boolean;

  constructor(readonly config: SshHostConfig) {
    this.hostLabel = `${config.host}${config.port && config.port !== 22 ? `:${config.port}` : ''}`;
    this.matches = hostKeyMatcher(config.hostKey);
    this.slots = new ExecSlots(config.maxConcurrentExec ?? 4, this.hostLabel);
  }

  get connected(): boolean {
    return this.live !== undefined && !this.live.ended;
  }

  /** Runs a command to its end and collects its output. */
  async run(argv: string[], opts: { timeoutMs: number; signal?: AbortSignal; stdin?: string }): Promise<RemoteCommandResult> {
    const command = shellCommand(argv);
    const release = this.hold();
    try {
      await this.slots.take(opts.signal);
      try {
        const live = await this.ensure();
        return await collectOutput(live, this.hostLabel, argv[0] ?? '', command, opts);
      } finally {
        this.slots.release();
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
      return await streamLines(live, this.hostLabel, argv[0] ?? '', command, release, onLine, onEnd);
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
      this.connecting = login(this.config, this.hostLabel, this.matches, {
        ready: (live) => {
          this.live = live;
        },
        lost: (live, err) => this.lose(live, err),
      }).finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
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
