import type { ErrorCode } from '../errors';

/**
 * Messages between the chunk worker pool (main thread) and each chunk worker. Plain data only:
 * they cross the thread boundary by structured clone, chunk bytes by transfer.
 */

export interface WorkerInit {
  /** Absolute path of the repository's `chunks/` directory. */
  chunksDir: string;
  zstdLevel: number;
}

export type WorkerRequest =
  /** Hash, zero-check, exists-check; if new: compress, write `tmpDir/<tmp>`, fsync, link into chunks/. */
  | { op: 'put'; id: number; data: Uint8Array; tmpDir: string }
  /** Read, decompress, check length and hash; reply with the plain bytes. */
  | { op: 'read'; id: number; digest: string; length: number }
  /** Like read, but only reports whether the chunk is intact. */
  | { op: 'check'; id: number; digest: string; length: number }
  /** fsync every chunk directory this worker touched since the last sync (and those pending);
   *  with `all`, every directory under chunks/ (after a worker died with unsynced entries). */
  | { op: 'sync'; id: number; all?: boolean }
  /** Test hook: the worker exits at once, as if it crashed. */
  | { op: 'crash'; id: number };

export type PutResult = ({ zero: true } | { zero: false; digest: string; stored: boolean; bytes: number }) & {
  /** The chunk's bytes, transferred back so the caller can reuse the memory for its next read
   *  (fresh megabyte buffers cost a page fault per 4 KiB). */
  returned?: Uint8Array;
};
export type ChunkStatus = 'ok' | 'missing' | 'corrupt';
export interface ReadResult {
  status: ChunkStatus;
  message?: string;
  data?: Uint8Array;
}

export type WorkerReply =
  | { id: number; ok: true; result: PutResult | ReadResult | null }
  /** `code`/`details`: a coded failure (AppError) raised in the worker, passed on as such. */
  | { id: number; ok: false; error: { message: string; errno?: string; code?: ErrorCode; details?: Record<string, unknown> } };

// Format 2 (packWorker.ts): the worker does a blob's CPU work and reads blobs from packs; the
// main thread writes packs.

export interface PackWorkerInit {
  zstdLevel: number;
  /** The 64 bytes of the repository key in an encrypted repository. */
  key?: Uint8Array;
}

interface BlobAt {
  /** Absolute path of the pack file. */
  file: string;
  offset: number;
  storedLength: number;
  /** the blob's id, hex */
  blob: string;
  /** plain length */
  length: number;
}

export type PackWorkerRequest =
  /** Zero check, id, compression (and encryption): the stored form, for the main thread to append. */
  | { op: 'seal'; id: number; data: Uint8Array }
  /** Read a blob from its pack, open, decompress, check: reply with the plain bytes. */
  | ({ op: 'readAt'; id: number } & BlobAt)
  /** Like readAt, but only reports whether the blob is intact. */
  | ({ op: 'checkAt'; id: number } & BlobAt)
  | { op: 'crash'; id: number };

export type SealResult = ({ zero: true } | { zero: false; id: string; stored: Uint8Array; plainLength: number }) & {
  /** The plain bytes, handed back for the caller's next read. */
  returned?: Uint8Array;
};

export type PackWorkerReply =
  | { id: number; ok: true; result: SealResult | ReadResult | null }
  | { id: number; ok: false; error: { message: string; errno?: string; code?: ErrorCode; details?: Record<string, unknown> } };
