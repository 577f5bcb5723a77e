/**
 * A raw NBD peer for the server's tests: it writes exactly the bytes a test asks for (hostile
 * ones included) and reads the server's answers field by field, so a test can check each error
 * reply and whether the server hung up.
 */
import * as net from 'net';
import { HandshakeReader } from '../../backend/src/nbd/handshake';
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPTS_MAGIC,
  NBD_REP_ACK,
  NBD_REP_FLAG_ERROR,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
} from '../../backend/src/nbd/constants';

export class RawNbd {
  private readonly reader = new HandshakeReader();
  private readonly gone: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (b: Buffer) => this.reader.push(b, 0, b.length));
    this.gone = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('close', () => this.reader.fail(new Error('the server closed the connection')));
  }

  /** A unix socket path, or a TCP port on 127.0.0.1. */
  static connect(where: string | number): Promise<RawNbd> {
    return new Promise((resolve, reject) => {
      const s = typeof where === 'string' ? net.createConnection({ path: where }) : net.createConnection({ port: where, host: '127.0.0.1' });
      s.once('connect', () => resolve(new RawNbd(s)));
      s.once('error', reject);
    });
  }

  write(...bufs: Buffer[]): void {
    for (const b of bufs) this.socket.write(b);
  }

  /** `n` bytes, or a rejection when the server hangs up or stays silent for `timeoutMs`. */
  read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${n} bytes from the server within ${timeoutMs} ms`)), timeoutMs);
      this.reader.read(n).then(
        (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Resolves when the server has closed the connection (rejects after `timeoutMs`). */
  closedByServer(timeoutMs = 10_000): Promise<void> {
    return Promise.race([this.gone, new Promise<void>((_, reject) => setTimeout(() => reject(new Error('the server kept the connection open')), timeoutMs).unref())]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Reads the greeting and answers it with fixed newstyle (and no zeroes). */
  async hello(clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<Buffer> {
    const g = await this.read(18);
    const f = Buffer.alloc(4);
    f.writeUInt32BE(clientFlags >>> 0);
    this.write(f);
    return g;
  }

  option(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
    h.writeUInt32BE(option >>> 0, 8);
    h.writeUInt32BE(declaredLength >>> 0, 12);
    this.write(h, data);
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const h = await this.read(20);
    const len = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: len > 0 ? await this.read(len) : Buffer.alloc(0) };
  }

  /** Option replies up to and including the final one (ACK or an error). */
  async optionReplies(): Promise<Array<{ option: number; type: number; data: Buffer }>> {
    const out = [];
    for (;;) {
      const r = await this.optionReply();
      out.push(r);
      if (r.type === NBD_REP_ACK || r.type & NBD_REP_FLAG_ERROR) return out;
    }
  }

  /** Hello (unless `greeted`), optionally structured replies and base:allocation, then GO on `name`. */
  async open(name: string, opts: { structured: boolean; allocation?: boolean; greeted?: boolean }): Promise<void> {
    if (!opts.greeted) await this.hello();
    if (opts.structured) {
      this.option(NBD_OPT_STRUCTURED_REPLY);
      await this.optionReplies();
    }
    const n = Buffer.from(name);
    if (opts.allocation) {
      const q = Buffer.from('base:allocation');
      const d = Buffer.alloc(4 + n.length + 4 + 4 + q.length);
      d.writeUInt32BE(n.length, 0);
      n.copy(d, 4);
      d.writeUInt32BE(1, 4 + n.length);
      d.writeUInt32BE(q.length, 8 + n.length);
      q.copy(d, 12 + n.length);
      this.option(NBD_OPT_SET_META_CONTEXT, d);
      await this.optionReplies();
    }
    const go = Buffer.alloc(4 + n.length + 2);
    go.writeUInt32BE(n.length, 0);
    n.copy(go, 4);
    this.option(NBD_OPT_GO, go);
    const replies = await this.optionReplies();
    const last = replies[replies.length - 1];
    if (last?.type !== NBD_REP_ACK) throw new Error(`NBD_OPT_GO refused: type 0x${last?.type.toString(16)} ${last?.data.toString()}`);
  }

  request(type: number, cookie: bigint, offset: bigint | number, length: number, flags = 0, magic = NBD_REQUEST_MAGIC): void {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(magic >>> 0, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(cookie, 8);
    b.writeBigUInt64BE(BigInt(offset), 16);
    b.writeUInt32BE(length >>> 0, 24);
    this.write(b);
  }

  async simpleReply(): Promise<{ error: number; cookie: bigint }> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error(`not a simple reply: magic 0x${h.readUInt32BE(0).toString(16)}`);
    return { error: h.readUInt32BE(4), cookie: h.readBigUInt64BE(8) };
  }

  async chunk(): Promise<{ flags: number; type: number; cookie: bigint; payload: Buffer }> {
    const h = await this.read(20);
    if (h.readUInt32BE(0) !== NBD_STRUCTURED_REPLY_MAGIC) throw new Error(`not a structured reply chunk: magic 0x${h.readUInt32BE(0).toString(16)}`);
    const len = h.readUInt32BE(16);
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), payload: len > 0 ? await this.read(len) : Buffer.alloc(0) };
  }

  /** The chunks of one reply, up to the one flagged DONE. */
  async reply(): Promise<Array<{ flags: number; type: number; cookie: bigint; payload: Buffer }>> {
    const out = [];
    for (;;) {
      const c = await this.chunk();
      out.push(c);
      if (c.flags & 1) return out;
    }
  }
}
