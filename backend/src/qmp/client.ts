import * as net from 'net';
import type { Duplex } from 'stream';
import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import type { QmpArgs, QmpCommandName, QmpResult } from './commands';
import { isQmpEvent, type QmpEvent, type QmpEventListener } from './events';
import { encodeMessage, LineDecoder } from './framing';
import { SessionSubscribers } from './subscribers';
import type { QmpCallOptions, QmpSession } from './session';

export interface QmpConnectOptions {
  /** Greeting + capabilities negotiation; default 10 s. A busy monitor (another client
   *  attached) sends no greeting at all, so this timeout is what reports it. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Names the peer in error messages (socket path, host/domain). */
  label?: string;
}

export interface QmpGreeting {
  version: { major: number; minor: number; micro: number; package: string };
  capabilities: string[];
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/**
 * A QMP connection over any duplex byte stream: greeting, capability negotiation,
 * id-correlated commands, and events fanned out to subscribers. QEMU may send events before
 * the reply to the command that caused them, so subscribers must be registered before the
 * command is sent (BlockJob does this).
 */
export class QmpClient implements QmpSession {
  private readonly decoder = new LineDecoder();
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new SessionSubscribers();
  private nextId = 1;
  private greetingWaiter: ((msg: Record<string, unknown>) => void) | undefined;
  greeting: QmpGreeting | undefined;

  private constructor(private readonly stream: Duplex, readonly label: string) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.shutdown(new AppError('QMP_DISCONNECTED', `qmp connection to ${label} failed`, { cause: err })));
    stream.on('close', () => this.shutdown(new AppError('QMP_DISCONNECTED', `qmp connection to ${label} closed`)));
    // QEMU closing its side is the end of the session, even if our side could still write.
    stream.on('end', () => this.shutdown(new AppError('QMP_DISCONNECTED', `qmp connection to ${label} closed by the peer`)));
  }

  static async connectUnix(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const label = opts.label ?? socketPath;
    const sock = await withTimeout(
      `qmp connect to ${label}`,
      opts.timeoutMs ?? 10_000,
      opts.signal,
      (signal) =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection({ path: socketPath });
          const onAbort = (): void => {
            s.destroy();
          };
          signal.addEventListener('abort', onAbort, { once: true });
          s.once('connect', () => {
            signal.removeEventListener('abort', onAbort);
            resolve(s);
          });
          s.once('error', (err) => {
            signal.removeEventListener('abort', onAbort);
            reject(new AppError('QMP_CONNECT_FAILED', `cannot connect to qmp socket ${socketPath}`, { cause: err }));
          });
        }),
      { timeout: 'QMP_TIMEOUT', aborted: 'QMP_ABORTED' },
    );
    return QmpClient.overStream(sock, { ...opts, label });
  }

  static async overStream(stream: Duplex, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(stream, opts.label ?? 'qmp stream');
    try {
      await withTimeout(
        `qmp handshake with ${client.label}`,
        opts.timeoutMs ?? 10_000,
        opts.signal,
        async (signal) => {
          const greetingMsg = await client.waitGreeting(signal);
          client.greeting = parseGreeting(greetingMsg, client.label);
          await client.execute('qmp_capabilities', {}, { signal });
        },
        { timeout: 'QMP_TIMEOUT', aborted: 'QMP_ABORTED' },
      );
    } catch (err) {
      client.shutdown(err instanceof Error ? err : undefined);
      stream.destroy();
      throw err;
    }
    return client;
  }

  get closed(): boolean {
    return this.subs.closed;
  }

  execute<K extends QmpCommandName>(name: K, args: QmpArgs<K>, opts: QmpCallOptions = {}): Promise<QmpResult<K>> {
    if (this.subs.closed) {
      return Promise.reject(
        new AppError('QMP_DISCONNECTED', `cannot run ${name}: qmp connection to ${this.label} is closed`, { cause: this.subs.closedReason }),
      );
    }
    if (opts.signal?.aborted) return Promise.reject(new AppError('QMP_ABORTED', `${name} aborted before it was sent`));
    const id = `olvm-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    return new Promise<QmpResult<K>>((resolve, reject) => {
      // A command cannot be withdrawn from QEMU once sent: a timeout or abort only stops
      // waiting; the late reply is dropped because its id is no longer pending.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        cleanup();
        reject(new AppError('QMP_TIMEOUT', `${name} on ${this.label} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.pending.delete(id);
        cleanup();
        reject(new AppError('QMP_ABORTED', `${name} on ${this.label} aborted`, { cause: opts.signal?.reason }));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { command: name, resolve: resolve as (v: unknown) => void, reject, cleanup });
      const wireArgs = Object.keys(args).length > 0 ? { arguments: args } : {};
      this.stream.write(encodeMessage({ execute: name, ...wireArgs, id }));
    });
  }

  onEvent(listener: QmpEventListener): () => void {
    return this.subs.onEvent(listener);
  }

  onClose(listener: (reason: Error | undefined) => void): () => void {
    return this.subs.onClose(listener);
  }

  /** Resolves with the first event matching `predicate` that arrives after this call. */
  waitForEvent(predicate: (e: QmpEvent) => boolean, opts: { timeoutMs: number; signal?: AbortSignal; what: string }): Promise<QmpEvent> {
    return waitForEvent(this, predicate, opts);
  }

  async close(): Promise<void> {
    if (this.subs.closed) return;
    const closed = new Promise<void>((resolve) => this.stream.once('close', () => resolve()));
    this.shutdown(undefined);
    this.stream.end();
    const timer = setTimeout(() => this.stream.destroy(), 2000);
    try {
      await closed;
    } finally {
      clearTimeout(timer);
    }
  }

  private waitGreeting(signal: AbortSignal): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.subs.closed) {
        reject(this.subs.closedReason ?? new AppError('QMP_DISCONNECTED', `qmp connection to ${this.label} closed before the greeting`));
        return;
      }
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const offClose = this.onClose((reason) =>
        reject(reason ?? new AppError('QMP_DISCONNECTED', `qmp connection to ${this.label} closed before the greeting`)),
      );
      this.greetingWaiter = (msg) => {
        signal.removeEventListener('abort', onAbort);
        offClose();
        resolve(msg);
      };
    });
  }

  private onData(chunk: Buffer): void {
    let messages: unknown[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.shutdown(err as Error);
      this.stream.destroy();
      return;
    }
    for (const m of messages) this.dispatch(m);
  }

  private dispatch(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null) return;
    const msg = raw as Record<string, unknown>;
    if ('QMP' in msg) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      waiter?.(msg);
      return;
    }
    if (isQmpEvent(msg)) {
      const event = msg as unknown as QmpEvent;
      if (event.data === undefined) event.data = {};
      this.subs.emit(event);
      return;
    }
    const id = typeof msg['id'] === 'string' ? msg['id'] : undefined;
    if (id === undefined) return; // replies to commands we did not send with an id
    const p = this.pending.get(id);
    if (!p) return; // timed out or aborted earlier
    this.pending.delete(id);
    p.cleanup();
    if ('error' in msg) {
      const e = (msg['error'] ?? {}) as { class?: string; desc?: string };
      p.reject(
        new AppError('QMP_COMMAND_FAILED', `qemu refused ${p.command} on ${this.label}: ${e.desc ?? 'unknown error'}`, {
          details: { qmpClass: e.class ?? 'GenericError', qmpDesc: e.desc ?? '', command: p.command },
        }),
      );
    } else {
      p.resolve(msg['return']);
    }
  }

  private shutdown(reason: Error | undefined): void {
    this.subs.close(reason, () => {
      const err = new AppError('QMP_DISCONNECTED', `qmp connection to ${this.label} closed`, { cause: reason });
      for (const p of this.pending.values()) {
        p.cleanup();
        p.reject(new AppError('QMP_DISCONNECTED', `${p.command} on ${this.label}: connection closed before the reply`, { cause: reason ?? err }));
      }
      this.pending.clear();
    });
  }
}

function parseGreeting(msg: Record<string, unknown>, label: string): QmpGreeting {
  const qmp = msg['QMP'] as { version?: { qemu?: { major: number; minor: number; micro: number }; package?: string }; capabilities?: string[] };
  const v = qmp?.version?.qemu;
  if (!v) throw new AppError('QMP_PROTOCOL_ERROR', `qmp greeting from ${label} has no version`);
  return { version: { ...v, package: qmp.version?.package ?? '' }, capabilities: qmp.capabilities ?? [] };
}

/** The QMP class of a refused command, when `err` is one. */
export function qmpErrorClass(err: unknown): string | undefined {
  if (err instanceof AppError && err.code === 'QMP_COMMAND_FAILED') return err.details?.['qmpClass'] as string | undefined;
  return undefined;
}

export function waitForEvent(
  session: QmpSession,
  predicate: (e: QmpEvent) => boolean,
  opts: { timeoutMs: number; signal?: AbortSignal; what: string },
): Promise<QmpEvent> {
  return withTimeout(
    `waiting for ${opts.what}`,
    opts.timeoutMs,
    opts.signal,
    (signal) =>
      new Promise<QmpEvent>((resolve, reject) => {
        const off = session.onEvent((e) => {
          if (predicate(e)) {
            done();
            resolve(e);
          }
        });
        const offClose = session.onClose((reason) => {
          done();
          reject(new AppError('QMP_DISCONNECTED', `qmp closed while waiting for ${opts.what}`, { cause: reason }));
        });
        const onAbort = (): void => done();
        signal.addEventListener('abort', onAbort, { once: true });
        function done(): void {
          off();
          offClose();
          signal.removeEventListener('abort', onAbort);
        }
      }),
    { timeout: 'QMP_TIMEOUT', aborted: 'QMP_ABORTED' },
  );
}
