import { AppError, type ErrorCode } from '../errors';
import {
  DEFAULT_MAX_BLOCK,
  DEFAULT_MIN_BLOCK,
  DEFAULT_PREFERRED_BLOCK,
  MAX_OPTION_REPLY_LENGTH,
  MAX_STRING_LENGTH,
  NBD_CLISERV_MAGIC,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_INIT_MAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPTS_MAGIC,
  NBD_REP_ACK,
  NBD_REP_ERR_NAMES,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_FLAG_ERROR,
  NBD_REP_INFO,
  NBD_REP_MAGIC,
  NBD_REP_META_CONTEXT,
} from './constants';
import type { ByteSink } from './transport';
import { ByteQueue } from './byteQueue';

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** Everything the transmission phase needs to know, as negotiated. */
export interface NegotiatedExport {
  size: number;
  /** NBD_FLAG_* transmission flags from NBD_INFO_EXPORT. */
  transmissionFlags: number;
  structuredReplies: boolean;
  blockSize: BlockSizeConstraints;
  /** Whether the server sent NBD_INFO_BLOCK_SIZE (else `blockSize` holds the spec defaults). */
  blockSizeAdvertised: boolean;
  metaContexts: Map<string, number>;
}

const OPT_NAMES: Readonly<Record<number, string>> = {
  [NBD_OPT_GO]: 'NBD_OPT_GO',
  [NBD_OPT_STRUCTURED_REPLY]: 'NBD_OPT_STRUCTURED_REPLY',
  [NBD_OPT_SET_META_CONTEXT]: 'NBD_OPT_SET_META_CONTEXT',
};

/**
 * Collects handshake bytes and hands them out in exact-size reads. Handshake messages are a few
 * dozen bytes, so copying every socket buffer here costs nothing; bytes left over when the
 * handshake ends (none with a conforming server) are passed on to the reply parser.
 */
export class HandshakeReader implements ByteSink {
  private readonly queue = new ByteQueue('concurrent handshake reads');

  push(buf: Buffer, start: number, end: number): void {
    this.queue.push(Buffer.from(buf.subarray(start, end)));
  }

  read(n: number): Promise<Buffer> {
    return this.queue.read(n);
  }

  /** The stream ended or the handshake was abandoned: fail the pending and all later reads. */
  fail(err: Error): void {
    this.queue.fail(err);
  }

  /** Whatever arrived after the last byte the handshake consumed. */
  takeLeftover(): Buffer {
    return this.queue.take();
  }
}

interface HandshakeIo {
  read(n: number): Promise<Buffer>;
  write(buf: Buffer): void;
}

interface OptionReply {
  type: number;
  data: Buffer;
}

/**
 * Fixed-newstyle negotiation: NBD_OPT_STRUCTURED_REPLY, then NBD_OPT_SET_META_CONTEXT when
 * contexts are wanted, then NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE. NBD_OPT_EXPORT_NAME is
 * never used: it cannot report a missing export except by hanging up, and it gives no block sizes.
 */
export async function negotiate(
  io: HandshakeIo,
  opts: { exportName: string; metaContexts: readonly string[]; label: string },
): Promise<NegotiatedExport> {
  const { exportName, label } = opts;
  const where = `nbd export '${exportName}' (${label})`;
  const name = Buffer.from(exportName, 'utf8');
  if (name.length > MAX_STRING_LENGTH) {
    throw new AppError('INVALID_ARGUMENT', `nbd export name '${exportName.slice(0, 64)}...' is longer than ${MAX_STRING_LENGTH} bytes`);
  }

  const hello = await io.read(18);
  if (hello.readBigUInt64BE(0) !== NBD_INIT_MAGIC) {
    throw new AppError('NBD_PROTOCOL_ERROR', `${label} is not an nbd server (bad greeting magic)`);
  }
  const second = hello.readBigUInt64BE(8);
  if (second === NBD_CLISERV_MAGIC) {
    throw new AppError('NBD_UNSUPPORTED', `nbd server on ${label} speaks only the oldstyle handshake`);
  }
  if (second !== NBD_OPTS_MAGIC) throw new AppError('NBD_PROTOCOL_ERROR', `nbd server on ${label} sent a bad newstyle magic`);
  const handshakeFlags = hello.readUInt16BE(16);
  if (!(handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE)) {
    throw new AppError('NBD_UNSUPPORTED', `nbd server on ${label} does not support the fixed newstyle handshake`);
  }
  const clientFlags = Buffer.alloc(4);
  clientFlags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (handshakeFlags & NBD_FLAG_NO_ZEROES ? NBD_FLAG_C_NO_ZEROES : 0));
  io.write(clientFlags);

  try {
    // Structured replies: needed for block status, and they let reads report holes and errors.
    sendOption(io, NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
    const sr = await readOptionReply(io, NBD_OPT_STRUCTURED_REPLY, label);
    let structuredReplies: boolean;
    if (sr.type === NBD_REP_ACK) structuredReplies = true;
    else if (sr.type === NBD_REP_ERR_UNSUP) structuredReplies = false;
    else throw optionError(NBD_OPT_STRUCTURED_REPLY, sr, where);

    const wanted = [...new Set(opts.metaContexts)];
    const metaContexts = new Map<string, number>();
    if (wanted.length > 0) {
      if (!structuredReplies) {
        throw new AppError('NBD_UNSUPPORTED', `${where}: server lacks structured replies, so meta context '${wanted[0]}' cannot be used`);
      }
      const queries = wanted.map((q) => Buffer.from(q, 'utf8'));
      const body = Buffer.alloc(4 + name.length + 4 + queries.reduce((s, q) => s + 4 + q.length, 0));
      let p = body.writeUInt32BE(name.length, 0);
      p += name.copy(body, p);
      p = body.writeUInt32BE(queries.length, p);
      for (const q of queries) {
        p = body.writeUInt32BE(q.length, p);
        p += q.copy(body, p);
      }
      sendOption(io, NBD_OPT_SET_META_CONTEXT, body);
      for (;;) {
        const r = await readOptionReply(io, NBD_OPT_SET_META_CONTEXT, label);
        if (r.type === NBD_REP_ACK) break;
        if (r.type === NBD_REP_META_CONTEXT) {
          if (r.data.length < 5) throw protocol(label, `NBD_REP_META_CONTEXT reply of ${r.data.length} bytes`);
          metaContexts.set(r.data.toString('utf8', 4), r.data.readUInt32BE(0));
        } else if (r.type & NBD_REP_FLAG_ERROR) {
          throw optionError(NBD_OPT_SET_META_CONTEXT, r, where);
        } else {
          throw protocol(label, `unexpected reply type ${r.type} to NBD_OPT_SET_META_CONTEXT`);
        }
      }
      const missing = wanted.filter((q) => !metaContexts.has(q));
      if (missing.length > 0) {
        throw new AppError('NBD_UNSUPPORTED', `${where} does not offer meta context ${missing.map((m) => `'${m}'`).join(', ')}`, {
          details: { missing, granted: [...metaContexts.keys()] },
        });
      }
    }

    // GO: name, then the list of NBD_INFO_* we ask for. Asking for NBD_INFO_BLOCK_SIZE also
    // promises the server that we honour its block size constraints.
    const go = Buffer.alloc(4 + name.length + 2 + 2);
    let p = go.writeUInt32BE(name.length, 0);
    p += name.copy(go, p);
    p = go.writeUInt16BE(1, p);
    go.writeUInt16BE(NBD_INFO_BLOCK_SIZE, p);
    sendOption(io, NBD_OPT_GO, go);
    let size: number | undefined;
    let transmissionFlags = 0;
    let blockSize: BlockSizeConstraints = { minimum: DEFAULT_MIN_BLOCK, preferred: DEFAULT_PREFERRED_BLOCK, maximum: DEFAULT_MAX_BLOCK };
    let blockSizeAdvertised = false;
    for (;;) {
      const r = await readOptionReply(io, NBD_OPT_GO, label);
      if (r.type === NBD_REP_ACK) break;
      if (r.type & NBD_REP_FLAG_ERROR) throw optionError(NBD_OPT_GO, r, where);
      if (r.type !== NBD_REP_INFO) throw protocol(label, `unexpected reply type ${r.type} to NBD_OPT_GO`);
      if (r.data.length < 2) throw protocol(label, 'empty NBD_REP_INFO reply');
      const info = r.data.readUInt16BE(0);
      if (info === NBD_INFO_EXPORT) {
        if (r.data.length !== 12) throw protocol(label, `NBD_INFO_EXPORT of ${r.data.length} bytes`);
        const big = r.data.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new AppError('NBD_UNSUPPORTED', `${where} is larger than 2^53 bytes`);
        size = Number(big);
        transmissionFlags = r.data.readUInt16BE(10);
      } else if (info === NBD_INFO_BLOCK_SIZE) {
        if (r.data.length !== 14) throw protocol(label, `NBD_INFO_BLOCK_SIZE of ${r.data.length} bytes`);
        blockSize = { minimum: r.data.readUInt32BE(2), preferred: r.data.readUInt32BE(6), maximum: r.data.readUInt32BE(10) };
        checkBlockSizes(blockSize, label);
        blockSizeAdvertised = true;
      }
      // Other NBD_INFO_* (name, description) are optional and ignored, as the spec asks.
    }
    if (size === undefined) throw protocol(label, 'NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
    if (!(transmissionFlags & NBD_FLAG_HAS_FLAGS)) transmissionFlags = 0;
    return { size, transmissionFlags, structuredReplies, blockSize, blockSizeAdvertised, metaContexts };
  } catch (err) {
    // A polite goodbye when the server is still talking to us; irrelevant if it is not.
    if (err instanceof AppError && err.code !== 'NBD_PROTOCOL_ERROR') {
      try {
        sendOption(io, NBD_OPT_ABORT, Buffer.alloc(0));
      } catch {
        // best effort
      }
    }
    throw err;
  }
}

function sendOption(io: HandshakeIo, option: number, data: Buffer): void {
  const h = Buffer.alloc(16 + data.length);
  h.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(data.length, 12);
  data.copy(h, 16);
  io.write(h);
}

async function readOptionReply(io: HandshakeIo, option: number, label: string): Promise<OptionReply> {
  const h = await io.read(20);
  if (h.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw protocol(label, 'bad option reply magic');
  const opt = h.readUInt32BE(8);
  if (opt !== option) throw protocol(label, `reply to option ${opt} while waiting for ${OPT_NAMES[option] ?? option}`);
  const type = h.readUInt32BE(12);
  const len = h.readUInt32BE(16);
  if (len > MAX_OPTION_REPLY_LENGTH) throw protocol(label, `option reply of ${len} bytes`);
  const data = len > 0 ? await io.read(len) : Buffer.alloc(0);
  return { type, data };
}

function optionError(option: number, r: OptionReply, where: string): AppError {
  const optName = OPT_NAMES[option] ?? `option ${option}`;
  const errName = NBD_REP_ERR_NAMES[r.type] ?? `reply type 0x${r.type.toString(16)}`;
  const serverMessage = r.data.toString('utf8').slice(0, MAX_STRING_LENGTH);
  const suffix = serverMessage ? `: ${serverMessage}` : '';
  let code: ErrorCode = 'NBD_CONNECT_FAILED';
  let what = `${where}: server refused ${optName} (${errName})`;
  if (r.type === NBD_REP_ERR_UNKNOWN) what = `${where} not found (${errName} to ${optName})`;
  else if (r.type === NBD_REP_ERR_UNSUP) code = 'NBD_UNSUPPORTED';
  else if (r.type === NBD_REP_ERR_TLS_REQD) {
    code = 'NBD_UNSUPPORTED';
    what = `${where}: server requires tls, which this client does not speak`;
  }
  return new AppError(code, `${what}${suffix}`, { details: { option: optName, reply: errName, serverMessage } });
}

function checkBlockSizes(b: BlockSizeConstraints, label: string): void {
  const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  if (!pow2(b.minimum) || b.minimum > 65536 || !pow2(b.preferred) || b.maximum < b.minimum) {
    throw protocol(label, `invalid block sizes min ${b.minimum} preferred ${b.preferred} max ${b.maximum}`);
  }
}

function protocol(label: string, what: string): AppError {
  return new AppError('NBD_PROTOCOL_ERROR', `nbd protocol violation from ${label} during the handshake: ${what}`);
}
