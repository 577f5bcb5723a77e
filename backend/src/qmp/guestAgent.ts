import * as net from 'net';
import type { Duplex } from 'stream';
import { AppError } from '../errors';
import { withTimeout } from '../util/abort';

/** What the backup needs from a VM's QEMU guest agent (qemu-ga inside the guest). */
export interface GuestAgent {
  /** Resolves when the agent answers guest-ping; `QGA_TIMEOUT` / `QGA_UNAVAILABLE` otherwise. */
  ping(opts?: QgaCallOptions): Promise<void>;
  fsfreezeStatus(opts?: QgaCallOptions): Promise<'thawed' | 'frozen'>;
  /** Freezes every freezable guest filesystem; returns how many were frozen. */
  fsfreezeFreeze(opts?: QgaCallOptions): Promise<number>;
  /** Thaws them; returns how many were thawed. */
  fsfreezeThaw(opts?: QgaCallOptions): Promise<number>;
  close(): Promise<void>;
}

export interface QgaCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const SENTINEL = 0xff;
const DEFAULT_TIMEOUT_MS = 10_000;

interface Pending {
  syncId?: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * The QEMU guest agent protocol over any duplex stream (the host side of the VM's
 * `org.qemu.guest_agent.0` virtio-serial channel, a unix socket). QMP-like JSON, but no greeting
 * and no capabilities negotiation, and the channel may hold stale bytes from an earlier client
 * (or from a guest that rebooted mid-reply): before the first command and after any timeout the
 * client sends 0xFF (resets the agent's parser) and `guest-sync-delimited` with a fresh id, then
 * drops everything up to the 0xFF the agent puts before that reply and every reply that is not
 * the one with that id. Commands go one at a time (replies carry no id of their own).
 */
export class GuestAgentClient implements GuestAgent {
  private buf: Buffer = Buffer.alloc(0);
  /** Discard every byte until a 0xFF (after a sync is sent). */
  private awaitingSentinel = false;
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private synced = false;
  private syncSeq = Math.floor(Math.random() * 1_000_000_000);
  private closedError: AppError | undefined;

  constructor(private readonly stream: Duplex, private readonly label = 'guest agent') {
    stream.on('data', (d: Buffer) => this.onData(d));
    const gone = (err?: Error): void => this.fail(new AppError('QGA_UNAVAILABLE', `${this.label}: channel closed`, err ? { cause: err } : {}));
    stream.on('error', gone);
    stream.on('close', () => gone());
    stream.on('end', () => gone());
  }

  /** Connects to a unix socket on this machine (the agent channel's host end). */
  static async connectUnix(socketPath: string, opts: { label?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GuestAgentClient> {
    const label = opts.label ?? `guest agent (${socketPath})`;
    const sock = await withTimeout(
      `${label}: connect`,
      opts.timeoutMs ?? 5000,
      opts.signal,
      (signal) =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath);
          const onAbort = (): void => {
            s.destroy();
          };
          signal.addEventListener('abort', onAbort, { once: true });
          s.once('connect', () => {
            signal.removeEventListener('abort', onAbort);
            s.removeAllListeners('error');
            resolve(s);
          });
          s.once('error', (err) => {
            signal.removeEventListener('abort', onAbort);
            reject(new AppError('QGA_UNAVAILABLE', `${label}: cannot connect`, { cause: err }));
          });
        }),
      { timeout: 'QGA_UNAVAILABLE', aborted: 'QGA_UNAVAILABLE' },
    );
    return new GuestAgentClient(sock, label);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  async ping(opts: QgaCallOptions = {}): Promise<void> {
    await this.execute('guest-ping', undefined, opts);
  }

  async fsfreezeStatus(opts: QgaCallOptions = {}): Promise<'thawed' | 'frozen'> {
    const r = await this.execute('guest-fsfreeze-status', undefined, opts);
    if (r !== 'thawed' && r !== 'frozen') throw new AppError('QGA_COMMAND_FAILED', `${this.label}: unexpected fsfreeze status ${JSON.stringify(r)}`);
    return r;
  }

  async fsfreezeFreeze(opts: QgaCallOptions = {}): Promise<number> {
    return this.count('guest-fsfreeze-freeze', opts);
  }

  async fsfreezeThaw(opts: QgaCallOptions = {}): Promise<number> {
    return this.count('guest-fsfreeze-thaw', opts);
  }

  close(): Promise<void> {
    this.fail(new AppError('QGA_UNAVAILABLE', `${this.label}: closed`));
    this.stream.destroy();
    return Promise.resolve();
  }

  private async count(command: string, opts: QgaCallOptions): Promise<number> {
    const r = await this.execute(command, undefined, opts);
    if (typeof r !== 'number') throw new AppError('QGA_COMMAND_FAILED', `${this.label}: ${command} returned ${JSON.stringify(r)}, not a count`);
    return r;
  }

  /**
   * One command, after any earlier one; syncs the stream first when needed. The timeout covers
   * the sync and the command. A timed-out call leaves the stream to be resynced by the next one.
   */
  execute(command: string, args?: Record<string, unknown>, opts: QgaCallOptions = {}): Promise<unknown> {
    const run = async (): Promise<unknown> =>
      withTimeout(
        `${this.label}: ${command}`,
        opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        opts.signal,
        async (signal) => {
          if (!this.synced) await this.sync(signal);
          return this.send({ execute: command, ...(args ? { arguments: args } : {}) }, undefined, signal);
        },
        { timeout: 'QGA_TIMEOUT', aborted: 'ABORTED' },
      ).catch((err: unknown) => {
        // whatever was in flight may still answer: the next call resyncs and drops it
        this.pending = undefined;
        if (!(err instanceof AppError && err.code === 'QGA_COMMAND_FAILED')) this.synced = false;
        throw err;
      });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async sync(signal: AbortSignal): Promise<void> {
    const id = ++this.syncSeq % 2_147_483_647;
    this.buf = Buffer.alloc(0);
    this.awaitingSentinel = true;
    const got = await this.send({ execute: 'guest-sync-delimited', arguments: { id } }, id, signal, Buffer.from([SENTINEL]));
    if (got !== id) throw new AppError('QGA_COMMAND_FAILED', `${this.label}: guest-sync-delimited answered ${JSON.stringify(got)}, expected ${id}`);
    this.synced = true;
  }

  private send(msg: object, syncId: number | undefined, signal: AbortSignal, prefix?: Buffer): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new AppError('QGA_TIMEOUT', `${this.label}: aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        ...(syncId !== undefined ? { syncId } : {}),
        resolve: (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const line = Buffer.from(JSON.stringify(msg) + '\n');
      this.stream.write(prefix ? Buffer.concat([prefix, line]) : line);
    });
  }

  private onData(data: Buffer): void {
    let chunk = data;
    // 0xFF never occurs in UTF-8 JSON: it announces a sync reply, and resets the parser
    const at = chunk.lastIndexOf(SENTINEL);
    if (at >= 0) {
      this.awaitingSentinel = false;
      chunk = chunk.subarray(at + 1);
      this.buf = Buffer.alloc(0);
    } else if (this.awaitingSentinel) {
      return; // stale bytes before the sync reply
    }
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) break;
      const text = this.buf.subarray(0, nl).toString('utf8').trim();
      this.buf = this.buf.subarray(nl + 1);
      if (text.length === 0) continue;
      let msg: { return?: unknown; error?: { class?: string; desc?: string } };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        continue; // garbage on the channel: the next sync recovers
      }
      this.onMessage(msg);
    }
    if (this.buf.length > 1 << 20) this.buf = Buffer.alloc(0);
  }

  private onMessage(msg: { return?: unknown; error?: { class?: string; desc?: string } }): void {
    const p = this.pending;
    if (!p) return; // a late reply to a call that timed out
    if (p.syncId !== undefined) {
      if (!('return' in msg) || msg.return !== p.syncId) return; // stale reply before ours
    }
    this.pending = undefined;
    if (msg.error) {
      const desc = msg.error.desc ?? 'unknown error';
      p.reject(new AppError('QGA_COMMAND_FAILED', `${this.label}: ${desc}`, { details: { qgaClass: msg.error.class ?? null, qgaDesc: desc } }));
    } else {
      p.resolve(msg.return);
    }
  }

  private fail(err: AppError): void {
    if (this.closedError) return;
    this.closedError = err;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }
}
