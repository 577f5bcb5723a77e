// The NBD client's public face: connecting to one export, its properties, and the commands
// (read, write, write-zeroes, trim, flush, block status) with their argument checks. The
// requests in flight live in inflight.ts, the connection set-up in connect.ts.
import { constants as bufferConstants } from 'buffer';
import type { Duplex } from 'stream';
import { AppError } from '../errors';
import { establish } from './connect';
import {
  MAX_RANGE_REQUEST_LENGTH,
  MAX_REQUEST_LENGTH,
  NBD_CMD_BLOCK_STATUS,
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
} from './constants';
import { appendMerged, decodeBlockStatus, totalLength } from './extents';
import type { NegotiatedExport } from './handshake';
import { InFlight, type Wire } from './inflight';
import { Transport } from './transport';
import type { Extent, NbdConnectOptions, NbdRequestOptions } from './types';

const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;
/**
 * Reads and writes are split at the server's maximum block size, and never sent larger than
 * this even if the server allows more (up to 4 GiB): bigger requests only delay the first byte
 * and hold more memory per request.
 */
const MAX_DATA_REQUEST = 32 * 1024 * 1024;

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
  private readonly requests: InFlight;

  private constructor(transport: Transport, negotiated: NegotiatedExport, exportName: string, label: string) {
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
    this.requests = new InFlight(transport, negotiated.structuredReplies, this.where);
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

  private static establish(label: string, opts: NbdConnectOptions, open: () => { transport: Transport; connected: Promise<void> }): Promise<NbdClient> {
    return establish(label, opts, open, (t, negotiated) => {
      const client = new NbdClient(t, negotiated, opts.exportName, label);
      return { value: client, start: (leftover) => client.requests.start(leftover), destroy: (reason) => client.destroy(reason) };
    });
  }

  // ---- state ---------------------------------------------------------------------------------

  get closed(): boolean {
    return this.requests.state === 'closed';
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
    return this.requests.run(
      what,
      opts,
      (op) => {
        for (let pos = 0; pos < length; pos += this.dataChunk) {
          const n = Math.min(this.dataChunk, length - pos);
          this.requests.send(op, NBD_CMD_READ, 0, offset + pos, n, out.subarray(pos, pos + n));
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
    await this.requests.run(
      what,
      opts,
      (op) => {
        for (let pos = 0; pos < length; pos += this.dataChunk) {
          const n = Math.min(this.dataChunk, length - pos);
          this.requests.send(op, NBD_CMD_WRITE, flags, offset + pos, n, undefined, data.subarray(pos, pos + n));
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
    await this.requests.runRanges(what, opts, NBD_CMD_WRITE_ZEROES, flags, offset, length);
  }

  /** Tells the server [offset, offset+length) is no longer needed (contents then undefined). */
  async trim(offset: number, length: number, opts?: NbdRequestOptions): Promise<void> {
    const what = `trim of ${length} bytes at offset ${offset}`;
    this.checkWritable(what);
    if (!this.canTrim) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support trim`);
    this.checkRange(what, offset, length);
    if (length === 0) return;
    await this.requests.runRanges(what, opts, NBD_CMD_TRIM, 0, offset, length);
  }

  /** Returns once every write the server has replied to is on stable storage. */
  async flush(opts?: NbdRequestOptions): Promise<void> {
    const what = 'flush';
    if (!this.canFlush) throw new AppError('NBD_UNSUPPORTED', `${what} on ${this.where}: the server does not support flush`);
    await this.requests.run(
      what,
      opts,
      (op) => this.requests.send(op, NBD_CMD_FLUSH, 0, 0, 0),
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
    return this.requests.run(
      what,
      opts,
      (op) => this.requests.send(op, NBD_CMD_BLOCK_STATUS, 0, offset, length),
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
    return this.requests.close(opts.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
  }

  /** Drops the connection now; every pending call rejects with NBD_DISCONNECTED (cause: `reason`). */
  destroy(reason?: Error): void {
    this.requests.destroy(reason);
  }

  // ---- argument checks -----------------------------------------------------------------------

  private checkRange(what: string, offset: number, length: number): void {
    if (this.requests.state !== 'open') {
      throw new AppError('NBD_DISCONNECTED', `cannot start ${what}: connection to ${this.where} is ${this.requests.state}`, { cause: this.requests.closeReason });
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
