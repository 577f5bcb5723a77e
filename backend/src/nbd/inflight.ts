// The requests in flight on one NBD connection: cookies, the caller's operation each belongs to,
// replies matched back to them, per-call timeouts and aborts, and the connection's shutdown
// (NBD_CMD_DISC, or everything pending rejected once when the stream ends).
import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import { MAX_RANGE_REQUEST_LENGTH, NBD_CMD_DISC, NBD_REQUEST_MAGIC, NBD_REQUEST_SIZE, nbdErrnoName } from './constants';
import { ReplyParser, type ReplyParserHost, type ReplyRequest } from './replyParser';
import type { Transport } from './transport';
import type { NbdRequestOptions } from './types';

const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const TWO_32 = 0x100000000;

/** One NBD request on the wire. A caller's operation may consist of several (split reads). */
export interface Wire extends ReplyRequest {
  readonly op: Operation;
  /** The operation gave up on this request; its reply is parsed and dropped when it comes. */
  abandoned: boolean;
}

/** One call of the public API: settles once, when all its wire requests are done or one fails. */
export interface Operation {
  readonly what: string;
  readonly wires: Wire[];
  /** Wire requests without a reply yet. */
  outstanding: number;
  settled: boolean;
  /** Computes the result once every wire succeeded; may throw a protocol error. */
  result: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

export type ConnectionState = 'open' | 'closing' | 'closed';

/**
 * Timeouts and aborts: NBD cannot cancel a request that has been sent. A timed-out or aborted
 * call is rejected at once (NBD_TIMEOUT / NBD_ABORTED) and its requests are marked abandoned;
 * their replies are still parsed when they arrive, to keep the stream in sync, and dropped.
 */
export class InFlight {
  private readonly inflight = new Map<number, Wire>();
  private readonly ops = new Set<Operation>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly closedWaiters: Array<() => void> = [];
  private readonly parser: ReplyParser;
  private nextCookie = 1;
  private closing: Promise<void> | undefined;
  state: ConnectionState = 'open';
  closeReason: Error | undefined;

  constructor(
    private readonly transport: Transport,
    structuredReplies: boolean,
    private readonly where: string,
  ) {
    const host: ReplyParserHost = {
      structuredReplies,
      find: (cookie) => this.inflight.get(cookie),
      complete: (req) => this.onReply(req as Wire),
    };
    this.parser = new ReplyParser(host, where);
  }

  /** The handshake is over: replies go to the parser from now on (with what was read past it). */
  start(leftover: Buffer): void {
    this.transport.onEnd((err) => this.shutdown(err));
    this.transport.setSink(this.parser);
    if (leftover.length > 0) this.parser.push(leftover, 0, leftover.length);
  }

  /**
   * Starts an operation: `send` puts its wire requests on the wire, `result` computes the value
   * once all of them succeeded. Replies may be parsed synchronously inside a write (a Duplex that
   * answers at once), so completion is held back until `send` has returned.
   */
  run<T>(what: string, opts: NbdRequestOptions | undefined, send: (op: Operation) => void, result: (op: Operation) => T): Promise<T> {
    if (this.state !== 'open') {
      return Promise.reject(new AppError('NBD_DISCONNECTED', `cannot start ${what}: connection to ${this.where} is ${this.state}`, { cause: this.closeReason }));
    }
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(new AppError('NBD_ABORTED', `${what} on ${this.where} aborted before it was sent`, { cause: signal.reason }));
    const timeoutMs = opts?.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const op: Operation = {
        what,
        wires: [],
        // One extra count for the sending phase itself, released below.
        outstanding: 1,
        settled: false,
        result: () => result(op),
        resolve: resolve as (v: unknown) => void,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      const timer = setTimeout(() => this.fail(op, new AppError('NBD_TIMEOUT', `${what} on ${this.where} got no reply within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => this.fail(op, new AppError('NBD_ABORTED', `${what} on ${this.where} aborted`, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.ops.add(op);
      try {
        send(op);
        this.wireSucceeded(op);
      } catch (err) {
        if (err instanceof AppError && err.code === 'NBD_PROTOCOL_ERROR') this.destroyOnViolation(err);
        else this.fail(op, err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** WRITE_ZEROES / TRIM over a range that may exceed the 32-bit length field. */
  async runRanges(what: string, opts: NbdRequestOptions | undefined, command: number, flags: number, offset: number, length: number): Promise<void> {
    await this.run(
      what,
      opts,
      (op) => {
        for (let pos = 0; pos < length; pos += MAX_RANGE_REQUEST_LENGTH) {
          this.send(op, command, flags, offset + pos, Math.min(MAX_RANGE_REQUEST_LENGTH, length - pos));
        }
      },
      () => undefined,
    );
  }

  send(op: Operation, command: number, flags: number, offset: number, length: number, buffer?: Buffer, payload?: Buffer): void {
    // An earlier part may already have failed (replies can be parsed inside a write).
    if (op.settled || this.state === 'closed') return;
    const cookie = this.nextCookie++;
    const wire: Wire = { cookie, command, offset, length, buffer, covered: 0, statusChunks: [], error: undefined, op, abandoned: false };
    this.inflight.set(cookie, wire);
    op.wires.push(wire);
    op.outstanding++;
    const h = Buffer.allocUnsafe(NBD_REQUEST_SIZE);
    h.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(command, 6);
    h.writeUInt32BE(Math.floor(cookie / TWO_32), 8);
    h.writeUInt32BE(cookie >>> 0, 12);
    h.writeUInt32BE(Math.floor(offset / TWO_32), 16);
    h.writeUInt32BE(offset >>> 0, 20);
    h.writeUInt32BE(length, 24);
    this.transport.write(h, payload);
  }

  /**
   * Waits for the calls in flight, sends NBD_CMD_DISC and waits for the server to hang up.
   * New calls are refused from the start. Past `timeoutMs` the connection is destroyed and
   * close rejects with NBD_TIMEOUT.
   */
  close(timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.closing) return this.closing;
    this.state = 'closing';
    this.closing = withTimeout(
      `closing ${this.where}`,
      timeoutMs,
      undefined,
      async (signal) => {
        await this.waitFor(this.idleWaiters, () => this.ops.size === 0, signal);
        if (this.state !== 'closed') {
          const h = Buffer.alloc(NBD_REQUEST_SIZE);
          h.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
          h.writeUInt16BE(NBD_CMD_DISC, 6);
          h.writeUInt32BE(0, 8);
          h.writeUInt32BE(this.nextCookie++, 12);
          this.transport.write(h);
          this.transport.end();
        }
        await this.waitFor(this.closedWaiters, () => this.state === 'closed', signal);
      },
      { timeout: 'NBD_TIMEOUT', aborted: 'NBD_ABORTED' },
    ).catch((err: unknown) => {
      this.destroy(err instanceof Error ? err : undefined);
      throw err;
    });
    return this.closing;
  }

  /** Drops the connection now; every pending call rejects with NBD_DISCONNECTED (cause: `reason`). */
  destroy(reason?: Error): void {
    this.shutdown(reason, true);
    this.transport.destroy();
  }

  /** The parser finished the reply of `wire`. Throwing here is a protocol error (connection dropped). */
  private onReply(wire: Wire): void {
    this.inflight.delete(wire.cookie);
    if (wire.abandoned) return;
    const op = wire.op;
    if (wire.error) {
      const { errno, message, offset } = wire.error;
      const name = nbdErrnoName(errno);
      this.fail(
        op,
        new AppError('NBD_SERVER_ERROR', `${op.what} on ${this.where} failed: ${name}${message ? `: ${message}` : ''}`, {
          details: { errno, errnoName: name, serverMessage: message, ...(offset !== undefined ? { errorOffset: offset } : {}) },
        }),
      );
      return;
    }
    this.wireSucceeded(op);
  }

  private wireSucceeded(op: Operation): void {
    if (op.settled) return;
    op.outstanding--;
    if (op.outstanding > 0) return;
    const value = op.result();
    this.settle(op);
    op.resolve(value);
  }

  /** A reply broke the protocol outside the parser's own checks: same treatment as a parser error. */
  private destroyOnViolation(err: AppError): void {
    this.transport.destroy(err);
  }

  /** Rejects `op`; its requests still on the wire are abandoned (their replies dropped on arrival). */
  private fail(op: Operation, err: Error): void {
    if (op.settled) return;
    for (const w of op.wires) {
      if (this.inflight.has(w.cookie)) {
        w.abandoned = true;
        w.buffer = undefined;
      }
    }
    this.settle(op);
    op.reject(err);
  }

  private settle(op: Operation): void {
    op.settled = true;
    op.cleanup();
    this.ops.delete(op);
    if (this.ops.size === 0) this.wake(this.idleWaiters);
  }

  /** The connection is gone (or going): reject everything pending, exactly once. */
  private shutdown(reason: Error | undefined, forceDisconnected = false): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = reason;
    const protocolError = !forceDisconnected && reason instanceof AppError && reason.code === 'NBD_PROTOCOL_ERROR';
    for (const op of [...this.ops]) {
      this.fail(
        op,
        protocolError
          ? new AppError('NBD_PROTOCOL_ERROR', `${op.what} on ${this.where} failed: connection dropped after a protocol violation`, { cause: reason })
          : new AppError('NBD_DISCONNECTED', `${op.what} on ${this.where} failed: connection closed before the reply`, { cause: reason }),
      );
    }
    this.inflight.clear();
    this.transport.setSink(undefined);
    if (!this.transport.isEnded) this.transport.destroy(reason);
    this.wake(this.idleWaiters);
    this.wake(this.closedWaiters);
  }

  private waitFor(waiters: Array<() => void>, ready: () => boolean, signal: AbortSignal): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (ready() || signal.aborted) resolve();
        else waiters.push(check);
      };
      waiters.push(check);
    });
  }

  private wake(waiters: Array<() => void>): void {
    for (const w of waiters.splice(0)) w();
  }
}
