/**
 * How readers get at stored data, whatever the format: chunks by id (format 1: chunk files,
 * ChunkStore; format 2: blobs in packs, PackStore) and a disk's index file decoded into the
 * flat chunk list (format 2 reads the tree's nodes for it).
 */
import type { ChunkStatus } from './chunkProtocol';
import type { DiskIndex } from './diskIndex';

export interface ChunkReader {
  /** Plain bytes of a stored chunk, fully checked; REPO_CORRUPT naming the chunk otherwise. */
  read(hex: string, length: number): Promise<Buffer>;
  check(hex: string, length: number): Promise<{ status: ChunkStatus; message?: string }>;
  /** Takes back a buffer read() returned, for reuse (optional: format 1 does not). */
  recycle?(data: Buffer): void;
  /** Reads at once that keep the workers busy. */
  readonly parallelism: number;
  /** The index file's content, checked and decoded (REPO_CORRUPT, kind index-corrupt, naming `what`). */
  decodeIndex(buf: Buffer, what: string): Promise<DiskIndex>;
}
