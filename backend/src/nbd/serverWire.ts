/**
 * The NBD server's wire encodings, pure: what it sends (greeting, option replies, simple replies,
 * structured reply chunks) and how it decodes what clients send (option payloads, request
 * headers). Every decoder bounds-checks and answers a reason instead of throwing, so that hostile
 * bytes become protocol errors, never exceptions. The numbers are in constants.ts.
 */
import {
  BASE_ALLOCATION,
  MAX_STRING_LENGTH,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_INIT_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_SIZE,
} from './constants';
import type { Extent } from './types';

/** NBDMAGIC, IHAVEOPT and the handshake flags: the first 18 bytes of every connection. */
export function greeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_INIT_MAGIC, 0);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return b;
}

/** One option reply: magic, the option answered, the reply type, the data. */
export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** An error reply's text: UTF-8, cut to the spec's string limit. */
export function errorText(message: string): Buffer {
  const b = Buffer.from(message, 'utf8');
  return b.length <= MAX_STRING_LENGTH ? b : b.subarray(0, MAX_STRING_LENGTH);
}

export function infoExport(size: number, transmissionFlags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(NBD_INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(transmissionFlags, 10);
  return b;
}

export function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(minimum, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(maximum, 10);
  return b;
}

/** NBD_INFO_NAME or NBD_INFO_DESCRIPTION: the type, then the text. */
export function infoText(type: typeof NBD_INFO_NAME | typeof NBD_INFO_DESCRIPTION, text: string): Buffer {
  const t = errorText(text);
  const b = Buffer.alloc(2 + t.length);
  b.writeUInt16BE(type, 0);
  t.copy(b, 2);
  return b;
}

/** NBD_REP_SERVER data: the name's length, the name, a description for people. */
export function repServer(name: string, description: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = errorText(description);
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

/** NBD_REP_META_CONTEXT data: the context id, the name. */
export function repMetaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

/** The reply to NBD_OPT_EXPORT_NAME: size, transmission flags, and the padding old clients expect. */
export function exportNameReply(size: number, transmissionFlags: number, padding: number): Buffer {
  const b = Buffer.alloc(10 + padding);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

// ---- option payloads ----------------------------------------------------------------------------

/**
 * The export name both export-naming option payloads open with (32-bit length, UTF-8), checked
 * against the data left for the `countBytes`-wide count that must follow it.
 */
function parseNamePrefix(data: Buffer, countBytes: number, count: string): { name: string; next: number } | string {
  const need = 4 + countBytes;
  if (data.length < need) return `${data.length} bytes of data, fewer than the ${need} a name length and ${count} need`;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - need) return `a name of ${nameLength} bytes in ${data.length} bytes of data`;
  if (nameLength > MAX_STRING_LENGTH) return `a name of ${nameLength} bytes (at most ${MAX_STRING_LENGTH})`;
  return { name: data.toString('utf8', 4, 4 + nameLength), next: 4 + nameLength };
}

/** NBD_OPT_INFO / NBD_OPT_GO: the export's name and the NBD_INFO_* the client asks for. */
export function parseExportRequest(data: Buffer): { name: string; infos: number[] } | string {
  const head = parseNamePrefix(data, 2, 'an info count');
  if (typeof head === 'string') return head;
  const { name } = head;
  let p = head.next;
  const count = data.readUInt16BE(p);
  p += 2;
  if (data.length !== p + 2 * count) return `${count} info requests in ${data.length - p} bytes`;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(p + 2 * i));
  return { name, infos };
}

/** NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: the export's name and the queries. */
export function parseMetaContextRequest(data: Buffer): { name: string; queries: string[] } | string {
  const head = parseNamePrefix(data, 4, 'a query count');
  if (typeof head === 'string') return head;
  const { name } = head;
  let p = head.next;
  const count = data.readUInt32BE(p);
  p += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (p + 4 > data.length) return `query ${i + 1} of ${count} starts past the end of the data`;
    const len = data.readUInt32BE(p);
    p += 4;
    if (len > data.length - p) return `query ${i + 1} of ${len} bytes runs past the end of the data`;
    if (len > MAX_STRING_LENGTH) return `query ${i + 1} of ${len} bytes (at most ${MAX_STRING_LENGTH})`;
    queries.push(data.toString('utf8', p, p + len));
    p += len;
  }
  if (p !== data.length) return `${data.length - p} bytes after the last query`;
  return { name, queries };
}

/**
 * Which of our contexts (only base:allocation) the queries name. `list`: NBD_OPT_LIST_META_CONTEXT,
 * where no query at all and the namespace wildcard `base:` match too; queries of other namespaces
 * are ignored, as the spec asks.
 */
export function matchContexts(queries: readonly string[], list: boolean): string[] {
  if (list && queries.length === 0) return [BASE_ALLOCATION];
  const hit = queries.some((q) => q === BASE_ALLOCATION || (list && q === 'base:'));
  return hit ? [BASE_ALLOCATION] : [];
}

// ---- transmission -------------------------------------------------------------------------------

export interface Request {
  flags: number;
  type: number;
  /** Opaque to the server, echoed in every reply. */
  cookie: bigint;
  /** Exact up to 2^53; larger offsets are beyond any export and answered EINVAL. */
  offset: number;
  length: number;
}

/** A request header, or why it is not one (bad magic: the stream cannot be trusted any more). */
export function parseRequest(b: Buffer): Request | string {
  if (b.length !== NBD_REQUEST_SIZE) return `a request header of ${b.length} bytes`;
  const magic = b.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) return `bad request magic 0x${magic.toString(16).padStart(8, '0')}`;
  const big = b.readBigUInt64BE(16);
  return {
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    cookie: b.readBigUInt64BE(8),
    offset: big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big),
    length: b.readUInt32BE(24),
  };
}

export function simpleReply(cookie: bigint, error: number): Buffer {
  const b = Buffer.alloc(NBD_SIMPLE_REPLY_SIZE);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}

/** A structured chunk's 20-byte header; `payloadLength` counts everything after it. */
export function chunkHeader(flags: number, type: number, cookie: bigint, payloadLength: number, extra = 0): Buffer {
  const b = Buffer.alloc(NBD_STRUCTURED_REPLY_SIZE + extra);
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeUInt32BE(payloadLength, 16);
  return b;
}

/** Header and offset of an OFFSET_DATA chunk; the `dataLength` bytes of data follow it. */
export function offsetDataHeader(flags: number, cookie: bigint, offset: number, dataLength: number): Buffer {
  const b = chunkHeader(flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataLength, 8);
  b.writeBigUInt64BE(BigInt(offset), NBD_STRUCTURED_REPLY_SIZE);
  return b;
}

export function offsetHole(flags: number, cookie: bigint, offset: number, length: number): Buffer {
  const b = chunkHeader(flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12, 12);
  b.writeBigUInt64BE(BigInt(offset), NBD_STRUCTURED_REPLY_SIZE);
  b.writeUInt32BE(length, NBD_STRUCTURED_REPLY_SIZE + 8);
  return b;
}

/** NBD_REPLY_TYPE_ERROR, or NBD_REPLY_TYPE_ERROR_OFFSET when `offset` is given. */
export function errorChunk(flags: number, cookie: bigint, errno: number, message: string, offset?: number): Buffer {
  const text = errorText(message);
  const tail = offset === undefined ? 0 : 8;
  const b = chunkHeader(flags, offset === undefined ? NBD_REPLY_TYPE_ERROR : NBD_REPLY_TYPE_ERROR_OFFSET, cookie, 6 + text.length + tail, 6 + text.length + tail);
  let p = NBD_STRUCTURED_REPLY_SIZE;
  p = b.writeUInt32BE(errno, p);
  p = b.writeUInt16BE(text.length, p);
  p += text.copy(b, p);
  if (offset !== undefined) b.writeBigUInt64BE(BigInt(offset), p);
  return b;
}

/** One BLOCK_STATUS chunk of `contextId`: the extents' lengths and flags (at least one). */
export function blockStatusChunk(flags: number, cookie: bigint, contextId: number, extents: readonly Extent[]): Buffer {
  const n = 4 + 8 * extents.length;
  const b = chunkHeader(flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, n, n);
  let p = b.writeUInt32BE(contextId, NBD_STRUCTURED_REPLY_SIZE);
  for (const e of extents) {
    p = b.writeUInt32BE(e.length, p);
    p = b.writeUInt32BE(e.flags >>> 0, p);
  }
  return b;
}
