/** Public option and result types of the NBD client (re-exported by index.ts). */

export interface NbdConnectOptions {
  exportName: string;
  /**
   * Meta contexts to negotiate, e.g. ['base:allocation', 'qemu:dirty-bitmap:frozen']. Names are
   * matched exactly (no namespace queries such as 'qemu:'); every one must be granted, else the
   * connect fails with NBD_UNSUPPORTED naming the missing ones.
   */
  metaContexts?: string[];
  /** Connect + handshake timeout, default 30000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface NbdRequestOptions {
  signal?: AbortSignal;
  /** Per call, default 120000 ms. */
  timeoutMs?: number;
}

/** One run of bytes with the same status flags in one meta context. */
export interface Extent {
  offset: number;
  length: number;
  flags: number;
}
