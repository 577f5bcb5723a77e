import * as net from 'net';
import type { Duplex } from 'stream';

/** Receives the bytes the server sends, in order. */
export interface ByteSink {
  /**
   * `buf[start, end)` arrived. The sink must copy whatever it keeps: the buffer is reused.
   * Throwing means the stream cannot be parsed any further: the transport is destroyed with
   * the thrown error.
   */
  push(buf: Buffer, start: number, end: number): void;
  /** Optional zero-copy path: where the next socket read should land (see ReplyParser). */
  directTarget?(): Buffer | undefined;
  /** `n` bytes were read into the buffer last returned by `directTarget`. May throw like push. */
  directFilled?(n: number): void;
}

/** Scratch buffer for socket reads that do not go straight into a read destination. */
const SCRATCH_SIZE = 256 * 1024;

/**
 * Owns the byte stream under one NBD connection: routes incoming bytes to the current sink (the
 * handshake first, then the reply parser), writes requests, and reports the end of the stream
 * exactly once.
 *
 * Over a unix socket it uses `net.Socket`'s `onread` with a buffer chosen before every read: the
 * scratch buffer normally, or the unfilled tail of the read request being received, so that bulk
 * read data goes from the kernel straight into the buffer `read()` returns. Any other Duplex (an
 * SSH channel) goes through ordinary 'data' events and one copy per byte.
 */
export class Transport {
  private sink: ByteSink | undefined;
  private endHandler: ((err: Error | undefined) => void) | undefined;
  private ended = false;
  private endError: Error | undefined;

  private constructor(
    readonly stream: Duplex,
    private readonly scratch: Buffer | undefined,
  ) {
    if (!scratch) stream.on('data', (chunk: Buffer) => this.deliver(chunk, 0, chunk.length));
    stream.on('error', (err: Error) => this.finish(err));
    // A server that hangs up ends its side. A net.Socket then closes itself, but a generic
    // Duplex may stay half-open, so 'end' already counts as the end of the connection.
    stream.on('end', () => this.finish(undefined));
    stream.on('close', () => this.finish(undefined));
  }

  /** Starts connecting to a unix socket; `connected` settles when the connect does. */
  static connectUnix(path: string): { transport: Transport; connected: Promise<void> } {
    const scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
    // The socket's read hooks need the transport, which needs the socket: tie them through a ref.
    const ref: { transport?: Transport } = {};
    const socket = net.createConnection({
      path,
      onread: {
        // Called after every read to pick the buffer for the next one.
        buffer: () => ref.transport?.nextReadBuffer() ?? scratch,
        callback: (n: number, buf: Uint8Array) => {
          ref.transport?.onRead(n, buf);
          return true;
        },
      },
    });
    const transport = new Transport(socket, scratch);
    ref.transport = transport;
    const connected = new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve();
      });
    });
    return { transport, connected };
  }

  static overStream(stream: Duplex): Transport {
    return new Transport(stream, undefined);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  setSink(sink: ByteSink | undefined): void {
    this.sink = sink;
  }

  /** `handler` runs once when the stream ends, errors or is destroyed (at once if it already has). */
  onEnd(handler: (err: Error | undefined) => void): void {
    this.endHandler = handler;
    if (this.ended) {
      const err = this.endError;
      queueMicrotask(() => handler(err));
    }
  }

  /** A request header, or header and payload together: one writev, no concatenation. */
  write(header: Buffer, payload?: Buffer): void {
    if (this.ended) return;
    if (payload && payload.length > 0) {
      this.stream.cork();
      this.stream.write(header);
      this.stream.write(payload);
      this.stream.uncork();
    } else {
      this.stream.write(header);
    }
  }

  /** Half-closes our side after the last request (NBD_CMD_DISC); the server then hangs up. */
  end(): void {
    if (!this.ended) this.stream.end();
  }

  destroy(err?: Error): void {
    this.finish(err);
    this.stream.destroy();
  }

  private nextReadBuffer(): Buffer {
    if (this.ended || !this.scratch) return this.scratch ?? Buffer.allocUnsafe(0);
    return this.sink?.directTarget?.() ?? this.scratch;
  }

  private onRead(n: number, buf: Uint8Array): void {
    if (buf === this.scratch) {
      this.deliver(this.scratch, 0, n);
      return;
    }
    if (this.ended) return;
    try {
      this.sink?.directFilled?.(n);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private deliver(buf: Buffer, start: number, end: number): void {
    if (this.ended || !this.sink) return;
    try {
      this.sink.push(buf, start, end);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private finish(err: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    this.endHandler?.(err);
  }
}
