import { AppError } from '../errors';
import {
  MAX_CHUNK_PAYLOAD_LENGTH,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_NAMES,
  NBD_CMD_READ,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_SIZE,
} from './constants';

/** An error the server reported for one request (simple reply error field or error chunk). */
export interface ServerErrorInfo {
  errno: number;
  message: string;
  /** Set by NBD_REPLY_TYPE_ERROR_OFFSET: the first failing byte. */
  offset?: number;
}

/**
 * What the parser needs to know about, and fills in for, one request on the wire. The client's
 * in-flight record implements it; the parser never allocates per-request state of its own.
 */
export interface ReplyRequest {
  readonly cookie: number;
  readonly command: number;
  readonly offset: number;
  readonly length: number;
  /**
   * Destination of read data, exactly `length` bytes. `undefined` means the caller gave up on
   * the request (timeout/abort): its reply is still parsed, to keep the stream in sync, but the
   * data is dropped. Re-read on every push, since it may be dropped between two socket reads.
   */
  buffer: Buffer | undefined;
  /** Bytes of the read range covered so far by data and hole chunks. */
  covered: number;
  /** Raw BLOCK_STATUS chunk payloads (context id + descriptors), in arrival order. */
  statusChunks: Buffer[];
  /** First error reported by the server; later ones are ignored. */
  error: ServerErrorInfo | undefined;
}

export interface ReplyParserHost {
  /** Whether NBD_OPT_STRUCTURED_REPLY was negotiated; structured chunks are illegal otherwise. */
  readonly structuredReplies: boolean;
  /** The request with this cookie, or undefined when none is outstanding. */
  find(cookie: number): ReplyRequest | undefined;
  /** The last reply (simple, or chunk flagged DONE) of `req` has been parsed. May throw a protocol error. */
  complete(req: ReplyRequest): void;
}

const enum State {
  /** Collecting a reply header into `header`; `need` tells how much of it. */
  Header,
  /** Simple reply to a successful READ: `remaining` bytes of data follow. */
  SimpleData,
  /** Collecting the fixed part of a data/hole chunk (offset, hole length) into `header`. */
  ChunkPrefix,
  /** Payload of an OFFSET_DATA chunk: `remaining` bytes go to `dataPos` of the request buffer. */
  ChunkData,
  /** Collecting a whole small chunk payload (status, error) into `payload`. */
  ChunkPayload,
}

/** Below this many outstanding payload bytes a direct socket read is not worth a syscall. */
const DIRECT_READ_MIN = 64 * 1024;

/**
 * Incremental parser of the transmission phase's server->client stream: simple replies and
 * structured reply chunks, any number of requests interleaved, arbitrary chunking by the socket.
 *
 * It never concatenates socket buffers. Read data is copied straight from each socket buffer
 * into the request's destination (or, with `directTarget`, read by the socket straight into it),
 * headers go through one fixed 20-byte scratch buffer, and only small chunk payloads (block
 * status, errors) get a buffer of their own, allocated once at their announced size.
 *
 * Any violation throws an NBD_PROTOCOL_ERROR AppError; the parser is then unusable and the
 * connection must be dropped, since the stream position can no longer be trusted.
 */
export class ReplyParser {
  private state: State = State.Header;
  private readonly header = Buffer.alloc(NBD_STRUCTURED_REPLY_SIZE);
  private have = 0;
  private need = 4;
  // Current chunk/reply.
  private req: ReplyRequest | undefined;
  private chunkFlags = 0;
  private chunkType = 0;
  private chunkLength = 0;
  private remaining = 0;
  private dataPos = 0;
  private payload: Buffer = Buffer.alloc(0);

  constructor(
    private readonly host: ReplyParserHost,
    private readonly label: string,
  ) {}

  /** Consumes `buf[start, end)`. Keeps no reference to `buf` (the socket may reuse it). */
  push(buf: Buffer, start: number, end: number): void {
    let pos = start;
    while (pos < end) {
      switch (this.state) {
        case State.Header:
        case State.ChunkPrefix: {
          const n = Math.min(this.need - this.have, end - pos);
          buf.copy(this.header, this.have, pos, pos + n);
          this.have += n;
          pos += n;
          if (this.have === this.need) {
            if (this.state === State.Header) this.onHeaderBytes();
            else this.onChunkPrefix();
          }
          break;
        }
        case State.SimpleData:
        case State.ChunkData: {
          const n = Math.min(this.remaining, end - pos);
          const dest = this.req?.buffer;
          if (dest) buf.copy(dest, this.dataPos, pos, pos + n);
          pos += n;
          this.advanceData(n);
          break;
        }
        case State.ChunkPayload: {
          const n = Math.min(this.remaining, end - pos);
          buf.copy(this.payload, this.payload.length - this.remaining, pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.onChunkPayload();
          break;
        }
      }
    }
  }

  /**
   * Where the socket may read the next bytes directly, skipping the copy: the unfilled part of
   * the current read destination, when a large enough run of data is outstanding. The socket
   * must then report the bytes it placed there through `directFilled`.
   */
  directTarget(): Buffer | undefined {
    if ((this.state !== State.SimpleData && this.state !== State.ChunkData) || this.remaining < DIRECT_READ_MIN) return undefined;
    const dest = this.req?.buffer;
    if (!dest) return undefined;
    return dest.subarray(this.dataPos, this.dataPos + this.remaining);
  }

  /** `n` bytes landed in the buffer last returned by `directTarget`. */
  directFilled(n: number): void {
    if ((this.state !== State.SimpleData && this.state !== State.ChunkData) || n > this.remaining) {
      throw this.violation('direct read overran the expected payload');
    }
    this.advanceData(n);
  }

  private advanceData(n: number): void {
    this.remaining -= n;
    this.dataPos += n;
    if (this.remaining > 0) return;
    const req = this.currentRequest();
    if (this.state === State.SimpleData) {
      req.covered = req.length;
      this.finishReply(req);
    } else {
      this.finishChunk();
    }
  }

  private onHeaderBytes(): void {
    const magic = this.header.readUInt32BE(0);
    if (this.have === 4) {
      if (magic === NBD_SIMPLE_REPLY_MAGIC) this.need = NBD_SIMPLE_REPLY_SIZE;
      else if (magic === NBD_STRUCTURED_REPLY_MAGIC) this.need = NBD_STRUCTURED_REPLY_SIZE;
      else throw this.violation(`bad reply magic 0x${magic.toString(16)}`);
      return;
    }
    if (magic === NBD_SIMPLE_REPLY_MAGIC) this.onSimpleHeader();
    else this.onStructuredHeader();
  }

  private onSimpleHeader(): void {
    const errno = this.header.readUInt32BE(4);
    const req = this.lookup(this.readCookie(8));
    this.req = req;
    if (errno !== 0) {
      req.error ??= { errno, message: '' };
      this.finishReply(req);
      return;
    }
    if (req.command === NBD_CMD_READ && req.length > 0) {
      // Without structured replies the data follows the header; there is no length on the
      // wire, so the request's own length is the only way to find the next header.
      this.state = State.SimpleData;
      this.remaining = req.length;
      this.dataPos = 0;
      return;
    }
    this.finishReply(req);
  }

  private onStructuredHeader(): void {
    if (!this.host.structuredReplies) throw this.violation('structured reply chunk although structured replies were not negotiated');
    this.chunkFlags = this.header.readUInt16BE(4);
    this.chunkType = this.header.readUInt16BE(6);
    const req = this.lookup(this.readCookie(8));
    this.req = req;
    this.chunkLength = this.header.readUInt32BE(16);
    const type = this.chunkType;
    const what = NBD_CMD_NAMES[req.command] ?? `command ${req.command}`;
    switch (type) {
      case NBD_REPLY_TYPE_NONE:
        if (this.chunkLength !== 0) throw this.violation(`NBD_REPLY_TYPE_NONE chunk with length ${this.chunkLength}`);
        if (!(this.chunkFlags & NBD_REPLY_FLAG_DONE)) throw this.violation('NBD_REPLY_TYPE_NONE chunk without the done flag');
        this.finishChunk();
        return;
      case NBD_REPLY_TYPE_OFFSET_DATA:
      case NBD_REPLY_TYPE_OFFSET_HOLE: {
        if (req.command !== NBD_CMD_READ) throw this.violation(`data chunk in the reply to a ${what} request`);
        const prefix = type === NBD_REPLY_TYPE_OFFSET_DATA ? 8 : 12;
        if (type === NBD_REPLY_TYPE_OFFSET_DATA ? this.chunkLength < 8 : this.chunkLength !== 12) {
          throw this.violation(`${type === NBD_REPLY_TYPE_OFFSET_DATA ? 'NBD_REPLY_TYPE_OFFSET_DATA' : 'NBD_REPLY_TYPE_OFFSET_HOLE'} chunk with length ${this.chunkLength}`);
        }
        this.state = State.ChunkPrefix;
        this.have = 0;
        this.need = prefix;
        return;
      }
      case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (req.command !== NBD_CMD_BLOCK_STATUS) throw this.violation(`block status chunk in the reply to a ${what} request`);
        if (this.chunkLength < 12 || (this.chunkLength - 4) % 8 !== 0) throw this.violation(`block status chunk with length ${this.chunkLength}`);
        this.collectPayload();
        return;
      default:
        if (!(type & NBD_REPLY_TYPE_ERROR_BIT)) throw this.violation(`unknown reply chunk type ${type}`);
        // Unknown error types still start with errno + message, so they can be reported.
        if (this.chunkLength < 6) throw this.violation(`error chunk with length ${this.chunkLength}`);
        this.collectPayload();
    }
  }

  private collectPayload(): void {
    if (this.chunkLength > MAX_CHUNK_PAYLOAD_LENGTH) throw this.violation(`chunk of ${this.chunkLength} bytes is too large`);
    this.payload = Buffer.allocUnsafe(this.chunkLength);
    this.remaining = this.chunkLength;
    this.state = State.ChunkPayload;
  }

  /** Offset (and hole length) of a data/hole chunk are in; check they lie inside the request. */
  private onChunkPrefix(): void {
    const req = this.currentRequest();
    const offset = this.readOffset(0);
    const isData = this.chunkType === NBD_REPLY_TYPE_OFFSET_DATA;
    const len = isData ? this.chunkLength - 8 : this.header.readUInt32BE(8);
    const rel = offset - req.offset;
    if (rel < 0 || rel + len > req.length) {
      throw this.violation(`${isData ? 'data' : 'hole'} chunk [${offset}, +${len}) outside the read request [${req.offset}, +${req.length})`);
    }
    req.covered += len;
    if (isData) {
      this.dataPos = rel;
      this.remaining = len;
      this.state = State.ChunkData;
      if (len === 0) this.finishChunk();
      return;
    }
    // Read buffers are allocated uninitialised for speed: holes must be written explicitly.
    req.buffer?.fill(0, rel, rel + len);
    this.finishChunk();
  }

  private onChunkPayload(): void {
    const req = this.currentRequest();
    const p = this.payload;
    this.payload = Buffer.alloc(0);
    if (this.chunkType === NBD_REPLY_TYPE_BLOCK_STATUS) {
      req.statusChunks.push(p);
    } else {
      const errno = p.readUInt32BE(0);
      const msgLen = p.readUInt16BE(4);
      const extra = this.chunkType === NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
      if (errno === 0) throw this.violation('error chunk with error value 0');
      if (this.chunkType === NBD_REPLY_TYPE_ERROR || this.chunkType === NBD_REPLY_TYPE_ERROR_OFFSET) {
        if (6 + msgLen + extra !== p.length) throw this.violation(`error chunk length ${p.length} does not match its message length ${msgLen}`);
      } else if (6 + msgLen > p.length) {
        throw this.violation(`error chunk length ${p.length} shorter than its message length ${msgLen}`);
      }
      const message = p.toString('utf8', 6, 6 + msgLen);
      if (!req.error) {
        req.error = { errno, message };
        if (extra) req.error.offset = Number(p.readBigUInt64BE(6 + msgLen));
      }
    }
    this.finishChunk();
  }

  private finishChunk(): void {
    const req = this.currentRequest();
    this.state = State.Header;
    if (this.chunkFlags & NBD_REPLY_FLAG_DONE) {
      this.finishReply(req);
    } else {
      this.resetHeader();
    }
  }

  private finishReply(req: ReplyRequest): void {
    this.state = State.Header;
    this.resetHeader();
    this.req = undefined;
    if (req.command === NBD_CMD_READ && !req.error && req.covered !== req.length) {
      // Overlapping or missing chunks would leave uninitialised memory in the result.
      throw this.violation(`reply to read [${req.offset}, +${req.length}) covered ${req.covered} bytes`);
    }
    this.host.complete(req);
  }

  private resetHeader(): void {
    this.have = 0;
    this.need = 4;
  }

  private lookup(cookie: number): ReplyRequest {
    const req = this.host.find(cookie);
    if (!req) throw this.violation(`reply for unknown cookie ${cookie}`);
    return req;
  }

  private currentRequest(): ReplyRequest {
    if (!this.req) throw this.violation('internal parser state lost its request');
    return this.req;
  }

  /** Cookies are ours, small counters; anything above 2^53 cannot match and fails lookup. */
  private readCookie(at: number): number {
    return this.header.readUInt32BE(at) * 0x100000000 + this.header.readUInt32BE(at + 4);
  }

  private readOffset(at: number): number {
    return this.header.readUInt32BE(at) * 0x100000000 + this.header.readUInt32BE(at + 4);
  }

  private violation(what: string): AppError {
    return new AppError('NBD_PROTOCOL_ERROR', `nbd protocol violation from ${this.label}: ${what}`);
  }
}
