/**
 * What the copy into the repository reads a disk through (diskCopy.ts): its size, its extents in
 * NBD terms (a meta context name, runs with flags) and ranged reads. NbdClient satisfies it as
 * is (the QMP method's fleecing exports); ImageioSource (imageioSource.ts) maps an imageio
 * ticket onto it (the engine method). One copy path for both: chunking, hashing and index
 * building exist once.
 */
import type { Extent } from '../nbd';

export interface DiskSource {
  /** Virtual size in bytes. */
  readonly size: number;
  /** Extents of `context` over [offset, offset+length): `base:allocation` (NBD_STATE_ZERO,
   *  NBD_STATE_HOLE) or a dirty context (NBD_STATE_DIRTY). */
  extents(context: string, offset?: number, length?: number, opts?: { signal?: AbortSignal }): Promise<Extent[]>;
  /** Exactly `length` bytes at `offset`; into `opts.into` when given (its length is `length`). */
  read(offset: number, length: number, opts?: { signal?: AbortSignal; into?: Buffer }): Promise<Buffer>;
}
