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
  /** The repository directory (packs are sealed into its packs/). */
  root: string;
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

/** Where a session's packs go: the repository, the staging directory, when to seal. */
export interface PackSessionRef {
  /** Unique in the process. */
  session: string;
  root: string;
  tmpDir: string;
  packSize: number;
}

/** A pack a worker finished: complete in `tmpFile`, to be published (fsync, rename) under `name`. */
export interface SealedPackInfo {
  tmpFile: string;
  name: string;
  entries: Array<{ id: string; type: number; offset: number; storedLength: number; plainLength: number }>;
}

export type PackWorkerRequest =
  /** Zero check and id; the worker keeps the bytes (under this request's id, `token` in the
   *  reply) until 'store' or 'drop'. A zero chunk is handed back at once. */
  | { op: 'hash'; id: number; data: Uint8Array }
  /** Compress (and encrypt) the held bytes and append them to the session's pack in this worker. */
  | { op: 'store'; id: number; token: number; type: number; to: PackSessionRef }
  /** Hand the held bytes back: the chunk was already stored. */
  | { op: 'drop'; id: number; token: number }
  /** Encode and append a small blob made by the main thread (index tree nodes). */
  | { op: 'storeBlob'; id: number; data: Uint8Array; type: number; to: PackSessionRef }
  /** Seal the session's open pack in this worker (if it has blobs). */
  | { op: 'flush'; id: number; session: string }
  /** Forget the session; its open pack (if any) is removed. */
  | { op: 'end'; id: number; session: string }
  /** Read a blob from its pack, open, decompress, check: reply with the plain bytes (in `into`,
   *  a buffer of the caller's handed over for reuse, when it is given and has the right size). */
  | ({ op: 'readAt'; id: number; into?: ArrayBuffer } & BlobAt)
  /** Like readAt, but only reports whether the blob is intact. */
  | ({ op: 'checkAt'; id: number } & BlobAt)
  | { op: 'crash'; id: number };

export type HashResult = ({ zero: true } | { zero: false; id: string; token: number }) & { returned?: Uint8Array };

export interface StoreResult {
  id: string;
  storedLength: number;
  /** The pack this blob filled up, sealed. */
  sealed?: SealedPackInfo;
  returned?: Uint8Array;
}

export interface DropResult {
  returned?: Uint8Array;
}

export interface FlushResult {
  sealed?: SealedPackInfo;
}

export type PackWorkerReply =
  | { id: number; ok: true; result: HashResult | StoreResult | DropResult | FlushResult | ReadResult | null }
  | { id: number; ok: false; error: { message: string; errno?: string; code?: ErrorCode; details?: Record<string, unknown> } };
