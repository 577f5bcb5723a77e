/**
 * NBD client and server (no third-party library), fixed newstyle, structured replies, meta
 * contexts and block status, many requests in flight on one connection.
 *
 * The client (client.ts) reads QEMU's exports during a backup; see it for the timeout/abort and
 * buffer ownership rules.
 *
 * The server (server.ts) serves read-only exports from an ExportSource (restore/ gives it a disk
 * of a restore point): serverHandshake.ts negotiates (NBD_OPT_GO/INFO/EXPORT_NAME, LIST, ABORT,
 * STRUCTURED_REPLY, LIST/SET_META_CONTEXT with base:allocation, STARTTLS — then required),
 * serverSession.ts answers READ (data, holes for zero runs, an error offset for a range that
 * cannot be read), BLOCK_STATUS, FLUSH (nothing to flush) and refuses writes with EPERM,
 * serverConn.ts owns the socket (bounded inbound buffer, TLS upgrade) and serverWire.ts the
 * encodings. Hostile input gets the NBD error reply; a header that is not one closes that
 * connection only.
 */
export { NbdClient } from './client';
export type { NbdConnectOptions, NbdRequestOptions, Extent } from './types';
export { NBD_STATE_HOLE, NBD_STATE_ZERO, NBD_STATE_DIRTY } from './constants';
export { NbdServer } from './server';
export type { NbdServerOptions, NbdServerAddress, NbdListen } from './server';
export type { ExportSource, ReadPiece } from './types';
export { BASE_ALLOCATION } from './constants';
