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

/**
 * Part of the answer to a read: `length` bytes at `offset` that are `data` (exactly `length`
 * bytes, which the server only reads, then hands back through `release` once they are sent or
 * dropped), zeroes (`zero`: sent as a hole when the client allows it), or that could not be read
 * (`error`: answered NBD_EIO for this range only).
 */
export type ReadPiece =
  | { offset: number; length: number; data: Buffer; release?: () => void }
  | { offset: number; length: number; zero: true }
  | { offset: number; length: number; error: Error };

/** What the NBD server serves: a read-only image of a fixed size. */
export interface ExportSource {
  readonly size: number;
  /** Shown to clients listing exports (NBD_INFO_DESCRIPTION, NBD_REP_SERVER). */
  readonly description: string;
  /** Pieces covering [offset, offset + length) in order, without gaps; the range is in bounds. */
  read(offset: number, length: number): Promise<ReadPiece[]>;
  /**
   * base:allocation of [offset, offset + length): consecutive extents from `offset` with
   * NBD_STATE_* flags, covering at least the first byte and at most the range.
   */
  allocation(offset: number, length: number): Extent[];
}
