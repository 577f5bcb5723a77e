/**
 * The transmission phase of one server connection: request headers are read one after the other
 * while up to `maxInFlight` of them are served at once, and each reply is written whole as soon
 * as it is ready (replies may overtake each other, as the spec allows). Reads answer with the
 * source's pieces: OFFSET_DATA, OFFSET_HOLE for zero runs and ERROR_OFFSET for a range that could
 * not be read (structured replies), or one simple reply (EIO for the whole read when any piece
 * failed). The export is read-only: write-like commands are refused with EPERM. Bad input gets
 * its NBD error; only a header that is not one (bad magic) ends the connection.
 */
import { describeError } from '../errors';
import type { Logger } from '../util/log';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_NAMES,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_EOVERFLOW,
  NBD_EPERM,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_NONE,
  NBD_REQUEST_SIZE,
  SERVER_MAX_EXTENTS,
  SERVER_MAX_PAYLOAD,
} from './constants';
import type { ServerConnection } from './serverConn';
import type { ChosenExport } from './serverHandshake';
import { blockStatusChunk, chunkHeader, errorChunk, offsetDataHeader, offsetHole, parseRequest, simpleReply, type Request } from './serverWire';
import type { Extent, ReadPiece } from './types';

/** Zeroes for holes in simple replies, shared (only ever read). */
const ZEROES = Buffer.alloc(1024 * 1024);

export interface SessionOptions {
  maxInFlight: number;
  log: Logger | undefined;
}

/** An NBD error for one request, with the text a structured reply carries to the user. */
class RequestError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** Serves requests until the client disconnects (NBD_CMD_DISC or hang-up) or breaks the protocol. */
export async function serveTransmission(conn: ServerConnection, exp: ChosenExport, opts: SessionOptions): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  try {
    for (;;) {
      while (inFlight.size >= opts.maxInFlight) await Promise.race(inFlight);
      // replies the client does not read stop us from reading more requests
      await conn.drained();
      let head: Buffer;
      try {
        head = await conn.read(NBD_REQUEST_SIZE);
      } catch {
        return; // the client hung up
      }
      const req = parseRequest(head);
      if (typeof req === 'string') {
        opts.log?.warn({ client: conn.label }, `nbd client broke the protocol: ${req}; connection closed`);
        conn.destroy();
        return;
      }
      if (req.type === NBD_CMD_DISC) {
        await Promise.allSettled(inFlight);
        conn.end();
        return;
      }
      if (req.type === NBD_CMD_WRITE) {
        // the payload follows the header: read past it to stay in step, then refuse
        if (req.length > SERVER_MAX_PAYLOAD) {
          sendError(conn, exp, req, NBD_EOVERFLOW, `a write of ${req.length} bytes (at most ${SERVER_MAX_PAYLOAD}); connection closed`);
          opts.log?.warn({ client: conn.label, length: req.length }, 'nbd client sent an oversized write; connection closed');
          conn.end();
          return;
        }
        try {
          await conn.skip(req.length);
        } catch {
          return;
        }
        sendError(conn, exp, req, NBD_EPERM, 'the export is read-only');
        continue;
      }
      const p = serve(conn, exp, req, opts.log);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}

/** One request other than DISC and WRITE; never throws. */
async function serve(conn: ServerConnection, exp: ChosenExport, req: Request, log: Logger | undefined): Promise<void> {
  try {
    switch (req.type) {
      case NBD_CMD_READ:
        checkFlags(req, 0);
        if (req.length > SERVER_MAX_PAYLOAD) throw new RequestError(NBD_EOVERFLOW, `a read of ${req.length} bytes (at most ${SERVER_MAX_PAYLOAD})`);
        checkBounds(exp, req);
        sendRead(conn, exp, req, req.length === 0 ? [] : await exp.source.read(req.offset, req.length));
        return;
      case NBD_CMD_FLUSH:
        // nothing is ever written, so nothing is unflushed
        checkFlags(req, 0);
        sendOk(conn, req);
        return;
      case NBD_CMD_TRIM:
      case NBD_CMD_WRITE_ZEROES:
      case NBD_CMD_CACHE:
        throw new RequestError(NBD_EPERM, `${NBD_CMD_NAMES[req.type] ?? req.type}: the export is read-only`);
      case NBD_CMD_BLOCK_STATUS: {
        if (exp.allocationContext === undefined || !exp.structured) throw new RequestError(NBD_EINVAL, 'block status without a meta context selected (NBD_OPT_SET_META_CONTEXT base:allocation)');
        checkFlags(req, NBD_CMD_FLAG_REQ_ONE);
        if (req.length === 0) throw new RequestError(NBD_EINVAL, 'block status of 0 bytes');
        checkBounds(exp, req);
        let extents = exp.source.allocation(req.offset, req.length);
        if (extents.length === 0) throw new RequestError(NBD_EIO, 'no allocation information');
        if (req.flags & NBD_CMD_FLAG_REQ_ONE) extents = [extents[0] as Extent];
        else if (extents.length > SERVER_MAX_EXTENTS) extents = extents.slice(0, SERVER_MAX_EXTENTS);
        conn.write([blockStatusChunk(NBD_REPLY_FLAG_DONE, req.cookie, exp.allocationContext, extents)]);
        return;
      }
      default:
        throw new RequestError(NBD_EINVAL, `unknown command ${req.type}`);
    }
  } catch (err) {
    if (err instanceof RequestError) {
      sendError(conn, exp, req, err.errno, err.message);
    } else {
      log?.error({ client: conn.label, command: NBD_CMD_NAMES[req.type] ?? req.type, offset: req.offset, length: req.length, err: describeError(err) }, 'nbd request failed');
      sendError(conn, exp, req, NBD_EIO, describeError(err));
    }
  }
}

function checkFlags(req: Request, allowed: number): void {
  if (req.flags & ~allowed) throw new RequestError(NBD_EINVAL, `command flags 0x${req.flags.toString(16)} are not valid for ${NBD_CMD_NAMES[req.type] ?? req.type}`);
}

function checkBounds(exp: ChosenExport, req: Request): void {
  if (req.offset > exp.source.size || req.length > exp.source.size - req.offset) {
    throw new RequestError(NBD_EINVAL, `bytes ${req.offset}+${req.length} are beyond the end of the export (${exp.source.size} bytes)`);
  }
}

function sendOk(conn: ServerConnection, req: Request): void {
  conn.write([simpleReply(req.cookie, 0)]);
}

function sendError(conn: ServerConnection, exp: ChosenExport, req: Request, errno: number, message: string): void {
  conn.write([exp.structured ? errorChunk(NBD_REPLY_FLAG_DONE, req.cookie, errno, message) : simpleReply(req.cookie, errno)]);
}

/** The reply to a read whose pieces are all in: all chunks written together, the last one DONE;
 *  the pieces' data handed back once the socket is done with it. */
function sendRead(conn: ServerConnection, exp: ChosenExport, req: Request, pieces: readonly ReadPiece[]): void {
  const sent = (): void => {
    for (const p of pieces) if ('data' in p) p.release?.();
  };
  if (!exp.structured) {
    const failed = pieces.some((p) => 'error' in p);
    if (failed) {
      sent();
      conn.write([simpleReply(req.cookie, NBD_EIO)]);
      return;
    }
    const out: Buffer[] = [simpleReply(req.cookie, 0)];
    for (const p of pieces) {
      if ('data' in p) out.push(p.data);
      else for (let left = p.length; left > 0; left -= ZEROES.length) out.push(ZEROES.subarray(0, Math.min(left, ZEROES.length)));
    }
    conn.write(out, sent);
    return;
  }
  const out: Buffer[] = [];
  let lastHeader: Buffer | undefined;
  for (const p of pieces) {
    if ('data' in p) {
      lastHeader = offsetDataHeader(0, req.cookie, p.offset, p.length);
      out.push(lastHeader, p.data);
    } else if ('zero' in p) {
      lastHeader = offsetHole(0, req.cookie, p.offset, p.length);
      out.push(lastHeader);
    } else {
      lastHeader = errorChunk(0, req.cookie, NBD_EIO, describeError(p.error), p.offset);
      out.push(lastHeader);
    }
  }
  // the last chunk carries DONE; an empty read is answered by a NONE chunk alone
  if (lastHeader) lastHeader.writeUInt16BE(NBD_REPLY_FLAG_DONE, 4);
  else out.push(chunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, req.cookie, 0));
  conn.write(out, sent);
}
