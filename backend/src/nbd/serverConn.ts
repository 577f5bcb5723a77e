/**
 * One client connection of the NBD server as a byte stream: exact-size reads (what the client
 * sends is small: options and 28-byte request headers; write payloads are skipped, never kept),
 * writes of whole replies, the upgrade to TLS after NBD_OPT_STARTTLS, and the close. Inbound
 * bytes are buffered up to a bound, then the socket is paused: a client that pipelines without
 * reading its replies is slowed down by TCP, not by our memory.
 */
import * as net from 'net';
import * as tls from 'tls';
import { AppError } from '../errors';
import { ByteQueue } from './byteQueue';

/** Above this many unread inbound bytes the socket is paused until the server catches up. */
const INBOUND_HIGH_WATER = 1024 * 1024;
/** Write payloads are discarded in pieces of at most this size. */
const SKIP_PIECE = 256 * 1024;

export class ServerConnection {
  private stream: net.Socket | tls.TLSSocket;
  private readonly inbound = new ByteQueue('concurrent reads of one nbd connection', (left) => {
    if (left <= INBOUND_HIGH_WATER && this.stream.isPaused()) this.stream.resume();
  });
  private closeHandlers: Array<() => void> = [];
  private isClosed = false;
  private onData = (b: Buffer): void => this.push(b);

  constructor(
    private readonly raw: net.Socket,
    readonly label: string,
  ) {
    this.stream = raw;
    raw.setNoDelay?.(true);
    this.attach(raw);
    raw.on('close', () => this.markClosed(new AppError('NBD_DISCONNECTED', `${label} closed the connection`)));
  }

  get tls(): boolean {
    return this.stream !== this.raw;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** `fn` runs once when the connection is gone (at once if it is). */
  onClose(fn: () => void): void {
    if (this.isClosed) queueMicrotask(fn);
    else this.closeHandlers.push(fn);
  }

  /** Exactly `n` bytes; NBD_DISCONNECTED when the client hangs up first. One read at a time. */
  async read(n: number): Promise<Buffer> {
    // a copy: a small header must not pin the socket buffer it arrived in
    return Buffer.from(await this.inbound.read(n));
  }

  /** Reads and drops `n` bytes (a refused write's payload) without holding more than a piece. */
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) {
      const k = Math.min(left, SKIP_PIECE);
      await this.read(k);
      left -= k;
    }
  }

  /** Writes one reply's buffers together, never interleaved with another reply; `sent` runs
   *  once the socket no longer needs them (written, or the connection gone). False: the
   *  socket's buffer is full, wait for `drained()` before sending more. */
  write(bufs: readonly Buffer[], sent?: () => void): boolean {
    if (this.isClosed || bufs.length === 0) {
      if (sent) queueMicrotask(sent);
      return true;
    }
    const s = this.stream;
    s.cork();
    const last = bufs.length - 1;
    bufs.forEach((b, i) => (i === last && sent ? s.write(b, () => sent()) : s.write(b)));
    s.uncork();
    return !s.writableNeedDrain;
  }

  /** Resolves once the socket's buffer drained (or the connection closed). */
  drained(): Promise<void> {
    const s = this.stream;
    if (this.isClosed || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        s.off('drain', done);
        resolve();
      };
      s.on('drain', done);
      this.onClose(done);
    });
  }

  /**
   * After NBD_REP_ACK to NBD_OPT_STARTTLS: everything from here on is TLS. The client may not
   * send anything between the option and its TLS hello, so nothing is buffered.
   */
  async startTls(secureContext: tls.SecureContext, timeoutMs: number): Promise<void> {
    const raw = this.raw;
    raw.off('data', this.onData);
    const leftover = this.inbound.take();
    if (leftover.length > 0) raw.unshift(leftover);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext, requestCert: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new AppError('NBD_TIMEOUT', `tls handshake with ${this.label} took more than ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(new AppError('NBD_CONNECT_FAILED', `tls handshake with ${this.label} failed`, { cause: err }));
      };
      secure.once('secure', () => {
        clearTimeout(timer);
        secure.off('error', fail);
        resolve();
      });
      secure.once('error', fail);
      this.onClose(() => fail(new AppError('NBD_DISCONNECTED', `${this.label} closed the connection during the tls handshake`)));
    });
    this.stream = secure;
    this.attach(secure);
    secure.on('close', () => this.markClosed(new AppError('NBD_DISCONNECTED', `${this.label} closed the connection`)));
  }

  /** Our side is done (after NBD_CMD_DISC, NBD_OPT_ABORT): flush what is queued, then close. */
  end(): void {
    if (this.isClosed) return;
    this.stream.end();
    // a client that never closes its side does not keep the socket open
    setTimeout(() => this.destroy(), 5_000).unref();
  }

  destroy(): void {
    this.stream.destroy();
    if (this.stream !== this.raw) this.raw.destroy();
    this.markClosed(new AppError('NBD_DISCONNECTED', `connection to ${this.label} closed by the server`));
  }

  private attach(s: net.Socket | tls.TLSSocket): void {
    s.on('data', this.onData);
    s.on('error', (err: Error) => this.markClosed(new AppError('NBD_DISCONNECTED', `connection to ${this.label} failed`, { cause: err })));
    s.on('end', () => this.fail(new AppError('NBD_DISCONNECTED', `${this.label} closed the connection`)));
  }

  private push(b: Buffer): void {
    this.inbound.push(b);
    if (this.inbound.size > INBOUND_HIGH_WATER) this.stream.pause();
  }

  private fail(err: Error): void {
    this.inbound.fail(err);
  }

  private markClosed(err: Error): void {
    this.fail(err);
    if (this.isClosed) return;
    this.isClosed = true;
    for (const h of this.closeHandlers.splice(0)) h();
  }
}
