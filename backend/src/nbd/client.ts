import { constants as bufferConstants } from 'buffer';
import type { Duplex } from 'stream';
import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import {
  MAX_RANGE_REQUEST_LENGTH,
  MAX_REQUEST_LENGTH,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
  nbdErrnoName,
} from './constants';
import { appendMerged, decodeBlockStatus, totalLength } from './extents';
import { HandshakeReader, negotiate, type NegotiatedExport } from './handshake';
import { ReplyParser, type ReplyParserHost, type ReplyRequest } from './replyParser';
import { Transport } from './transport';
import type { Extent, NbdConnectOptions, NbdRequestOptions } from './types';

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
/**
 * Reads and writes are split at the server's maximum block size, and never sent larger than
 * this even if the server allows more (up to 4 GiB): bigger requests only delay the first byte
 * and hold more memory per request.
 */
const MAX_DATA_REQUEST = 32 * 1024 * 1024;

const TWO_32 = 0x100000000;

/** One NBD request on the wire. A caller's operation may consist of several (split reads). */
interface Wire extends ReplyRequest {
  readonly op: Operation;
  /** The operation gave up on this request; its reply is parsed and dropped when it comes. */
  abandoned: boolean;
}

/** One call of the public API: settles once, when all its wire requests are done or one fails. */
interface Operation {
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

type State = 'open' | 'closing' | 'closed';

/**
 * NBD client for one export over one connection (fixed newstyle handshake, structured replies,
 * meta contexts / block status, many requests in flight matched by cookie).
 *
 * Timeouts and aborts: NBD cannot cancel a request that has been sent. A timed-out or aborted
 * call is rejected at once (NBD_TIMEOUT / NBD_ABORTED) and its requests are marked abandoned;
 * their replies are still parsed when they arrive, to keep the stream in sync, and dropped. The
 * connection stays usable. A server that never answers at all is detected by the per-call
 * timeouts; `destroy()` is the way out of that state.
 *
 * Buffers: `read()` returns a new Buffer owning its whole ArrayBuffer (transferable to a
 * worker). `write()` sends the caller's Buffer without copying it, so the caller must not change
 * it before the promise settles. Writes are not throttled here: callers bound the number of
 * requests in flight.
 */
export class NbdClient {
  readonly exportName: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly blockSize: { minimum: number; preferred: number; maximum: number };
  readonly canWriteZeroes: boolean;
  readonly canFlush: boolean;
  readonly canTrim: boolean;
  readonly metaContexts: ReadonlyMap<string, number>;

  private readonly canFua: boolean;
  private readonly where: string;
  private readonly dataChunk: number;
  private readonly inflight = new Map<number, Wire>();
  private readonly ops = new Set<Operation>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly closedWaiters: Array<() => void> = [];
  private readonly parser: ReplyParser;
  private nextCookie = 1;
  private state: State = 'open';
  private closeReason: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly transport: Transport,
    negotiated: NegotiatedExport,
    exportName: string,
    label: string,
  ) {
    this.exportName = exportName;
    this.where = `nbd export '${exportName}' (${label})`;
    this.size = negotiated.size;
    const tf = negotiated.transmissionFlags;
    this.readOnly = (tf & NBD_FLAG_READ_ONLY) !== 0;
    this.canFlush = (tf & NBD_FLAG_SEND_FLUSH) !== 0;
    this.canTrim = (tf & NBD_FLAG_SEND_TRIM) !== 0;
    this.canWriteZeroes = (tf & NBD_FLAG_SEND_WRITE_ZEROES) !== 0;
    this.canFua = (tf & NBD_FLAG_SEND_FUA) !== 0;
    this.blockSize = { ...negotiated.blockSize };
    this.metaContexts = negotiated.metaContexts;
    const { minimum, maximum } = this.blockSize;
    this.dataChunk = Math.max(minimum, Math.floor(Math.min(maximum, MAX_DATA_REQUEST) / minimum) * minimum);
    const host: ReplyParserHost = {
      structuredReplies: negotiated.structuredReplies,
      find: (cookie) => this.inflight.get(cookie),
      complete: (req) => this.onReply(req as Wire),
    };
    this.parser = new ReplyParser(host, this.where);
  }

  // ---- connecting ----------------------------------------------------------------------------

  static connectUnix(socketPath: string, opts: NbdConnectOptions): Promise<NbdClient> {
    return NbdClient.establish(`socket ${socketPath}`, opts, () => {
      const { transport, connected } = Transport.connectUnix(socketPath);
      const mapped = connected.catch((err: unknown) => {
        throw new AppError('NBD_CONNECT_FAILED', `cannot connect to nbd socket ${socketPath} for export '${opts.exportName}'`, { cause: err });
      });
      return { transport, connected: mapped };
    });
  }

  /**
   * Runs the protocol over an already connected stream (e.g. an SSH channel to a remote unix
   * socket). The client owns the stream from here on: it is destroyed if the handshake fails.
   */
  static connectStream(stream: Duplex, opts: NbdConnectOptions): Promise<NbdClient> {
    return NbdClient.establish('stream', opts, () => ({ transport: Transport.overStream(stream), connected: Promise.resolve() }));
  }

  private static async establish(
    label: string,
    opts: NbdConnectOptions,
    open: () => { transport: Transport; connected: Promise<void> },
  ): Promise<NbdClient> {
    const where = `nbd export '${opts.exportName}' (${label})`;
    let transport: Transport | undefined;
    let client: NbdClient | undefined;
    try {
      return await withTimeout(
        `connecting to ${where}`,
        opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        opts.signal,
        async (signal) => {
          const opened = open();
          transport = opened.transport;
          const t = transport;
          const reader = new HandshakeReader();
          t.setSink(reader);
          t.onEnd((err) =>
            reader.fail(new AppError('NBD_CONNECT_FAILED', `nbd server on ${label} closed the connection during the handshake with export '${opts.exportName}'`, { cause: err })),
          );
          // Tearing the stream down is what unblocks a handshake stuck on a silent server.
          const onAbort = (): void => t.destroy(signal.reason instanceof Error ? signal.reason : undefined);
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            await opened.connected;
            const negotiated = await negotiate(
              { read: (n) => reader.read(n), write: (b) => t.write(b) },
              { exportName: opts.exportName, metaContexts: opts.metaContexts ?? [], label },
            );
            if (t.isEnded) throw new AppError('NBD_DISCONNECTED', `${where} closed right after the handshake`);
            client = new NbdClient(t, negotiated, opts.exportName, label);
            client.startTransmission(reader.takeLeftover());
            return client;
          } finally {
            signal.removeEventListener('abort', onAbort);
          }
        },
        { timeout: 'NBD_TIMEOUT', aborted: 'NBD_ABORTED' },
      );
    } catch (err) {
      // Also covers a timeout/abort racing with a handshake that had just finished.
      if (client) client.destroy(err instanceof Error ? err : undefined);
      transport?.destroy();
      throw err;
    }
  }

  private startTransmission(leftover: Buffer): void {
    this.transport.onEnd((err) => this.shutdown(err));
    this.transport.setSink(this.parser);
    if (leftover.length > 0) this.parser.push(leftover, 0, leftover.length);
  }

  // ---- state ---------------------------------------------------------------------------------

  get closed(): boolean {
    return this.state === 'closed';
  }

  // ---- commands ------------------------------------------------------------------------------

  /** Reads [offset, offset+length); split into several requests above the maximum block size. */
  /**
   * With `into` (exactly `length` bytes) the data lands in the caller's buffer, which can then be
   * recycled across reads. After a read that timed out or was aborted, `into` may still be
   * written by the late reply: do not reuse it.
   */
  async read(offset: number, length: number, opts?: NbdRequestOptions & { into?: Buffer }): Promise<Buffer> {
    const what = `read of ${length} bytes at offset ${offset}`;
    this.checkRange(what, offset, length);
    if (length > bufferConstants.MAX_LENGTH) throw this.invalid(what, `larger than the largest possible buffer`);
    if (opts?.into && opts.into.length !== length) throw this.invalid(what, `the buffer to read into has ${opts.into.length} bytes`);
    const out = opts?.into ?? Buffer.allocUnsafeSlow(length);
    if (length === 0) return out;
    return this.run(
      what,
      opts,
      (op) => {
        for (let pos = 0; pos < length; pos += this.dataChunk) {
          const n = Math.min(this.dataChunk, length - pos);
          this.send(op, NBD_CMD_READ, 0, offset + pos, n, out.subarray(pos, pos + n));
        }
      },
      () => out,
    );
  }

  /** Writes `data` at `offset`; `data` is sent as is (not copied), so leave it alone until this settles. */
  async write(offset: number, data: Buffer, opts?: NbdRequestOptions & { fua?: boolean }): Promise<void> {
    const length = data.length;
    const what = `write of ${length} bytes at offset ${offset}`;
    this.checkWritable(what);
    this.checkRange(what, offset, length);
    const flags = this.fuaFlag(what, opts?.fua);
    if (length === 0) return;
    await this.run(
      what,
      opts,
      (op) => {
        for (let pos = 0; pos < length; pos += this.dataChunk) {
          const n = Math.min(this.dataChunk, length - pos);
          this.send(op, NBD_CMD_WRITE, flags, offset + pos, n, undefined, data.subarray(pos, pos + n));
        }
      },
      () => undefined,
    );
  }

  /** Makes [offset, offset+length) read as zeroes; `noHole` asks the server to keep it allocated. */
  async writeZeroes(offset: number, length: number, opts?: NbdRequestOptions & { noHole?: boolean; fua?: boolean }): Promise<void> {
    const what = `write-zeroes of ${length} bytes at offset ${offset}`;
    this.checkWritable(what);
    if (!this.canWriteZeroes) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support write-zeroes`);
    this.checkRange(what, offset, length);
    const flags = this.fuaFlag(what, opts?.fua) | (opts?.noHole ? NBD_CMD_FLAG_NO_HOLE : 0);
    if (length === 0) return;
    await this.runRanges(what, opts, NBD_CMD_WRITE_ZEROES, flags, offset, length);
  }

  /** Tells the server [offset, offset+length) is no longer needed (contents then undefined). */
  async trim(offset: number, length: number, opts?: NbdRequestOptions): Promise<void> {
    const what = `trim of ${length} bytes at offset ${offset}`;
    this.checkWritable(what);
    if (!this.canTrim) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support trim`);
    this.checkRange(what, offset, length);
    if (length === 0) return;
    await this.runRanges(what, opts, NBD_CMD_TRIM, 0, offset, length);
  }

  /** Returns once every write the server has replied to is on stable storage. */
  async flush(opts?: NbdRequestOptions): Promise<void> {
    const what = 'flush';
    if (!this.canFlush) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support flush`);
    await this.run(
      what,
      opts,
      (op) => this.send(op, NBD_CMD_FLUSH, 0, 0, 0),
      () => undefined,
    );
  }

  /**
   * One NBD_CMD_BLOCK_STATUS request for `context`: the server may describe less than asked.
   * Extents are clipped to [offset, offset+length); at least one is returned.
   */
  async blockStatus(context: string, offset: number, length: number, opts?: NbdRequestOptions): Promise<Extent[]> {
    const what = `block status of '${context}' for ${length} bytes at offset ${offset}`;
    const contextId = this.metaContexts.get(context);
    if (contextId === undefined) throw this.invalid(what, `meta context '${context}' was not negotiated at connect`);
    this.checkRange(what, offset, length);
    if (length === 0 || length > MAX_REQUEST_LENGTH) throw this.invalid(what, `length must be between 1 and ${MAX_REQUEST_LENGTH}`);
    return this.run(
      what,
      opts,
      (op) => this.send(op, NBD_CMD_BLOCK_STATUS, 0, offset, length),
      (op) => {
        const wire = op.wires[0] as Wire;
        const end = offset + length;
        const out: Extent[] = [];
        for (const chunk of wire.statusChunks) {
          if (chunk.readUInt32BE(0) !== contextId) continue;
          const from = out.length > 0 ? offset + totalLength(out) : offset;
          for (const e of decodeBlockStatus(chunk, from, end)) out.push(e);
        }
        if (out.length === 0) {
          throw new AppError('NBD_PROTOCOL_ERROR', `nbd protocol violation from ${this.where}: ${what} got no extents for that context`);
        }
        return out;
      },
    );
  }

  /**
   * The whole map of `context` over [offset, offset+length) (default: to the end of the
   * export), in as many block status requests as the server needs; adjacent extents with equal
   * flags are merged. The timeout applies to each request.
   */
  async extents(context: string, offset = 0, length?: number, opts?: NbdRequestOptions): Promise<Extent[]> {
    const len = length ?? this.size - offset;
    this.checkRange(`block status of '${context}' for ${len} bytes at offset ${offset}`, offset, len);
    const end = offset + len;
    const out: Extent[] = [];
    let pos = offset;
    while (pos < end) {
      const part = await this.blockStatus(context, pos, Math.min(end - pos, MAX_RANGE_REQUEST_LENGTH), opts);
      for (const e of part) appendMerged(out, e);
      pos += totalLength(part);
    }
    return out;
  }

  // ---- shutting down -------------------------------------------------------------------------

  /**
   * Waits for the calls in flight, sends NBD_CMD_DISC and waits for the server to hang up.
   * New calls are refused from the start. If that takes longer than `timeoutMs` (default 30 s)
   * the connection is destroyed and close rejects with NBD_TIMEOUT.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.closing) return this.closing;
    this.state = 'closing';
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
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

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Starts an operation: `send` puts its wire requests on the wire, `result` computes the value
   * once all of them succeeded. Replies may be parsed synchronously inside a write (a Duplex that
   * answers at once), so completion is held back until `send` has returned.
   */
  private run<T>(what: string, opts: NbdRequestOptions | undefined, send: (op: Operation) => void, result: (op: Operation) => T): Promise<T> {
    if (this.state !== 'open') {
      return Promise.reject(
        new AppError('NBD_DISCONNECTED', `cannot start ${what}: connection to ${this.where} is ${this.state}`, { cause: this.closeReason }),
      );
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
      const timer = setTimeout(
        () => this.fail(op, new AppError('NBD_TIMEOUT', `${what} on ${this.where} got no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
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
  private async runRanges(what: string, opts: NbdRequestOptions | undefined, command: number, flags: number, offset: number, length: number): Promise<void> {
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

  private send(op: Operation, command: number, flags: number, offset: number, length: number, buffer?: Buffer, payload?: Buffer): void {
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

  private checkRange(what: string, offset: number, length: number): void {
    if (this.state !== 'open') {
      throw new AppError('NBD_DISCONNECTED', `cannot start ${what}: connection to ${this.where} is ${this.state}`, { cause: this.closeReason });
    }
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw this.invalid(what, `offset and length must be non-negative integers`);
    }
    if (offset + length > this.size) throw this.invalid(what, `beyond the end of the export (${this.size} bytes)`);
    const min = this.blockSize.minimum;
    // The server may reject requests not aligned to its minimum block size; the export's tail
    // is the exception when the size itself is unaligned.
    if (min > 1 && (offset % min !== 0 || (length % min !== 0 && offset + length !== this.size))) {
      throw this.invalid(what, `not aligned to the export's minimum block size ${min}`);
    }
  }

  private checkWritable(what: string): void {
    if (this.readOnly) throw this.invalid(what, `the export is read-only`);
  }

  private fuaFlag(what: string, fua: boolean | undefined): number {
    if (!fua) return 0;
    if (!this.canFua) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support fua`);
    return NBD_CMD_FLAG_FUA;
  }

  private invalid(what: string, reason: string): AppError {
    return new AppError('INVALID_ARGUMENT', `${what} on ${this.where}: ${reason}`);
  }
}
