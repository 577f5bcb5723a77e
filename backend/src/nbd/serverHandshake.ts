/**
 * The server's side of the fixed newstyle handshake: the greeting, then option haggling until
 * the client picks an export (NBD_OPT_GO, or the old NBD_OPT_EXPORT_NAME), aborts, or breaks the
 * protocol. Every option the spec lets us refuse is refused with its error reply; only what
 * leaves the stream position unknown (bad magic, oversized option data, unknown client flags,
 * an export name NBD_OPT_EXPORT_NAME cannot refuse) ends the connection. With TLS configured the
 * server is in the spec's FORCEDTLS mode: every option but NBD_OPT_STARTTLS and NBD_OPT_ABORT is
 * answered NBD_REP_ERR_TLS_REQD until TLS is up.
 */
import type * as tls from 'tls';
import { AppError } from '../errors';
import {
  BASE_ALLOCATION,
  NBD_EXPORT_NAME_PADDING,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_OPTS_MAGIC,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  SERVER_MAX_OPTION_LENGTH,
  SERVER_MAX_OPTIONS,
  SERVER_MAX_PAYLOAD,
} from './constants';
import type { ServerConnection } from './serverConn';
import {
  errorText,
  exportNameReply,
  greeting,
  infoBlockSize,
  infoExport,
  infoText,
  matchContexts,
  optionReply,
  parseExportRequest,
  parseMetaContextRequest,
  repMetaContext,
  repServer,
} from './serverWire';
import type { ExportSource } from './types';

/** Every export is read-only; several connections may read it at once (nothing changes). */
export const SERVED_FLAGS = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH | NBD_FLAG_CAN_MULTI_CONN;
/** The context id base:allocation gets (any non-zero id would do: ids are per connection). */
export const ALLOCATION_CONTEXT_ID = 1;

export interface HandshakeConfig {
  /** Name → export. The empty name (the client's "default export") means `defaultName`. */
  exports: ReadonlyMap<string, ExportSource>;
  defaultName: string;
  /** Set: TLS is required before anything else (FORCEDTLS). */
  tls: tls.SecureContext | undefined;
  tlsTimeoutMs: number;
  /** Advertised in NBD_INFO_BLOCK_SIZE (a power of two, ≥ 512). */
  preferredBlock: number;
}

/** What the transmission phase works with. */
export interface ChosenExport {
  name: string;
  source: ExportSource;
  structured: boolean;
  /** base:allocation's id when the client selected it for this export. */
  allocationContext: number | undefined;
}

/** The handshake; undefined when the client ended it politely (NBD_OPT_ABORT). Throws
 *  NBD_PROTOCOL_ERROR when the connection must be dropped. */
export async function serverHandshake(conn: ServerConnection, cfg: HandshakeConfig): Promise<ChosenExport | undefined> {
  conn.write([greeting()]);
  const clientFlags = (await conn.read(4)).readUInt32BE(0);
  if (clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) throw violation(conn, `unknown client flags 0x${clientFlags.toString(16)}`);
  if (cfg.tls && !(clientFlags & NBD_FLAG_C_FIXED_NEWSTYLE)) throw violation(conn, 'a client without fixed newstyle cannot start tls, which this server requires');
  const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;
  let structured = false;
  let contexts: { exportName: string; ids: Map<string, number> } | undefined;
  const lookup = (name: string): { name: string; source: ExportSource } | undefined => {
    const real = name === '' ? cfg.defaultName : name;
    const source = cfg.exports.get(real);
    return source ? { name: real, source } : undefined;
  };
  const reply = (option: number, type: number, data?: Buffer): void => void conn.write([optionReply(option, type, data)]);
  const refuse = (option: number, type: number, message: string): void => reply(option, type, errorText(message));
  /** A parsed export-naming payload and its export; undefined once the option was refused. */
  const namedExport = <T extends { name: string }>(option: number, req: T | string): { req: T; found: { name: string; source: ExportSource } } | undefined => {
    if (typeof req === 'string') {
      refuse(option, NBD_REP_ERR_INVALID, req);
      return undefined;
    }
    const found = lookup(req.name);
    if (!found) refuse(option, NBD_REP_ERR_UNKNOWN, `no export '${req.name.slice(0, 64)}'`);
    return found ? { req, found } : undefined;
  };

  for (let count = 0; ; count++) {
    if (count >= SERVER_MAX_OPTIONS) throw violation(conn, `more than ${SERVER_MAX_OPTIONS} options without choosing an export`);
    const head = await conn.read(16);
    if (head.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) throw violation(conn, 'bad option magic');
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);
    if (length > SERVER_MAX_OPTION_LENGTH) {
      if (option !== NBD_OPT_EXPORT_NAME) refuse(option, NBD_REP_ERR_TOO_BIG, `option data of ${length} bytes (at most ${SERVER_MAX_OPTION_LENGTH})`);
      throw violation(conn, `option ${option} with ${length} bytes of data`);
    }
    const data = await conn.read(length);
    if (cfg.tls && !conn.tls && option !== NBD_OPT_STARTTLS && option !== NBD_OPT_ABORT) {
      if (option === NBD_OPT_EXPORT_NAME) throw violation(conn, 'NBD_OPT_EXPORT_NAME before tls, which this server requires');
      refuse(option, NBD_REP_ERR_TLS_REQD, 'this server requires tls: send NBD_OPT_STARTTLS first');
      continue;
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME: {
        const found = lookup(data.toString('utf8'));
        // this option cannot be refused: the spec's answer is to hang up
        if (!found) throw violation(conn, `NBD_OPT_EXPORT_NAME of an unknown export '${data.toString('utf8').slice(0, 64)}'`);
        conn.write([exportNameReply(found.source.size, SERVED_FLAGS, noZeroes ? 0 : NBD_EXPORT_NAME_PADDING)]);
        return chosen(found, structured, contexts);
      }
      case NBD_OPT_ABORT:
        reply(option, NBD_REP_ACK);
        conn.end();
        return undefined;
      case NBD_OPT_LIST:
        if (length > 0) {
          refuse(option, NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const [name, source] of cfg.exports) reply(option, NBD_REP_SERVER, repServer(name, source.description));
        reply(option, NBD_REP_ACK);
        break;
      case NBD_OPT_STARTTLS:
        if (!cfg.tls) refuse(option, NBD_REP_ERR_POLICY, 'this server is not configured for tls');
        else if (length > 0) refuse(option, NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
        else if (conn.tls) refuse(option, NBD_REP_ERR_INVALID, 'tls is already running');
        else {
          reply(option, NBD_REP_ACK);
          await conn.startTls(cfg.tls, cfg.tlsTimeoutMs);
          // nothing negotiated before the upgrade survives it
          structured = false;
          contexts = undefined;
        }
        break;
      case NBD_OPT_STRUCTURED_REPLY:
        if (length > 0) refuse(option, NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        else {
          structured = true;
          reply(option, NBD_REP_ACK);
        }
        break;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT: {
        const set = option === NBD_OPT_SET_META_CONTEXT;
        // a failed SET still replaces what an earlier one selected
        if (set) contexts = undefined;
        if (!structured) {
          refuse(option, NBD_REP_ERR_INVALID, 'meta contexts need structured replies: send NBD_OPT_STRUCTURED_REPLY first');
          break;
        }
        const target = namedExport(option, parseMetaContextRequest(data));
        if (!target) break;
        const { req, found } = target;
        const names = matchContexts(req.queries, !set);
        for (const n of names) reply(option, NBD_REP_META_CONTEXT, repMetaContext(set ? ALLOCATION_CONTEXT_ID : 0, n));
        if (set) contexts = { exportName: found.name, ids: new Map(names.map((n) => [n, ALLOCATION_CONTEXT_ID])) };
        reply(option, NBD_REP_ACK);
        break;
      }
      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        const target = namedExport(option, parseExportRequest(data));
        if (!target) break;
        const { req, found } = target;
        reply(option, NBD_REP_INFO, infoExport(found.source.size, SERVED_FLAGS));
        if (req.infos.includes(NBD_INFO_NAME)) reply(option, NBD_REP_INFO, infoText(NBD_INFO_NAME, found.name));
        if (req.infos.includes(NBD_INFO_DESCRIPTION)) reply(option, NBD_REP_INFO, infoText(NBD_INFO_DESCRIPTION, found.source.description));
        if (req.infos.includes(NBD_INFO_BLOCK_SIZE)) reply(option, NBD_REP_INFO, infoBlockSize(1, cfg.preferredBlock, SERVER_MAX_PAYLOAD));
        reply(option, NBD_REP_ACK);
        if (option === NBD_OPT_GO) return chosen(found, structured, contexts);
        break;
      }
      default:
        refuse(option, NBD_REP_ERR_UNSUP, `option ${option} is not supported by this server`);
    }
  }
}

function chosen(found: { name: string; source: ExportSource }, structured: boolean, contexts: { exportName: string; ids: Map<string, number> } | undefined): ChosenExport {
  // contexts selected for another export do not apply to this one
  const ids = contexts?.exportName === found.name ? contexts.ids : undefined;
  return { name: found.name, source: found.source, structured, allocationContext: ids?.get(BASE_ALLOCATION) };
}

function violation(conn: ServerConnection, what: string): AppError {
  return new AppError('NBD_PROTOCOL_ERROR', `nbd client ${conn.label} broke the protocol during the handshake: ${what}`);
}
