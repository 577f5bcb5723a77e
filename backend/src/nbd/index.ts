/**
 * NBD client (no third-party library): fixed newstyle handshake, structured replies, meta
 * contexts and block status, many requests in flight on one connection. See client.ts for the
 * timeout/abort and buffer ownership rules.
 */
export { NbdClient } from './client';
export type { NbdConnectOptions, NbdRequestOptions, Extent } from './types';
export { NBD_STATE_HOLE, NBD_STATE_ZERO, NBD_STATE_DIRTY } from './constants';
