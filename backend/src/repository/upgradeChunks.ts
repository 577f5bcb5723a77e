/**
 * Step 1 of the in-place upgrade (FORMAT.md §22): every format-1 chunk file, in the order of
 * the `chunks/` listing (then `gc-pending/`, where a crashed format-1 collection may have left
 * chunks that are still referenced), checked — decompressed and re-hashed in the worker pool —
 * and appended as it is to a pack: a chunk file is already the stored form of an unencrypted
 * format-2 blob. A chunk the repository index lists already (copied by an earlier run) is
 * skipped; a corrupt one is moved to quarantine/, audited, and left out.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import * as zstd from 'zstd-napi/binding';
import { AppError } from '../errors';
import { isErrno, readdirOrEmpty } from './atomicFile';
import { appendAudit } from './audit';
import type { ReadResult } from './chunkProtocol';
import { quarantineChunk } from './damage';
import { CHUNKS_DIR, GC_PENDING_DIR, isHexDigest } from './layout';
import { BlobType } from './pack';
import type { PackStore } from './packStore';
import type { UpgradePacker } from './upgradePacker';

export interface ChunkFile {
  hex: string;
  file: string;
}

export interface CorruptChunk {
  chunk: string;
  message: string;
  /** Its name under quarantine/, null if it vanished meanwhile. */
  quarantined: string | null;
}

export interface ChunkCopyResult {
  /** Chunk files found. */
  seen: number;
  copied: number;
  bytesCopied: number;
  /** Found in the repository index already (an earlier run copied them). */
  alreadyPacked: number;
  corrupt: CorruptChunk[];
}

/** The chunk files of `chunks/ab/cd/<digest>` in listing order, then those in gc-pending/. */
export async function* chunkFiles(root: string): AsyncGenerator<ChunkFile> {
  const chunks = path.join(root, CHUNKS_DIR);
  for (const a of await names(chunks)) {
    if (!/^[0-9a-f]{2}$/.test(a)) continue;
    for (const b of await names(path.join(chunks, a))) {
      if (!/^[0-9a-f]{2}$/.test(b)) continue;
      for (const hex of await names(path.join(chunks, a, b))) {
        if (isHexDigest(hex) && hex.startsWith(a + b)) yield { hex, file: path.join(chunks, a, b, hex) };
      }
    }
  }
  for (const hex of await names(path.join(root, GC_PENDING_DIR))) if (isHexDigest(hex)) yield { hex, file: path.join(root, GC_PENDING_DIR, hex) };
}

/** How many chunk files there are (a listing, no stat): the progress total. */
export async function countChunkFiles(root: string): Promise<number> {
  let n = 0;
  const files = chunkFiles(root);
  while (!(await files.next()).done) n++;
  return n;
}

export interface CopyContext {
  root: string;
  store: PackStore;
  packer: UpgradePacker;
  chunkSize: number;
  actor: string;
  onChunk?: () => void;
}

/** Copies every chunk file not yet in a pack (see the module comment). */
export async function copyChunks(ctx: CopyContext): Promise<ChunkCopyResult> {
  const out: ChunkCopyResult = { seen: 0, copied: 0, bytesCopied: 0, alreadyPacked: 0, corrupt: [] };
  const files = chunkFiles(ctx.root);
  const next = async (): Promise<ChunkFile | undefined> => (await files.next()).value as ChunkFile | undefined;
  // checks run in the workers; appends, one at a time, in the packer
  const lane = async (): Promise<void> => {
    for (let f = await next(); f; f = await next()) {
      out.seen++;
      const r = await copyOne(ctx, f);
      if (r === 'packed') out.alreadyPacked++;
      else if (typeof r === 'number') {
        out.copied++;
        out.bytesCopied += r;
      } else if (r) out.corrupt.push(r);
      ctx.onChunk?.();
    }
  };
  await Promise.all(Array.from({ length: Math.max(2, ctx.store.parallelism) }, lane));
  return out;
}

/** Stored bytes appended; 'packed' if it is in a pack already; a CorruptChunk; null if gone. */
async function copyOne(ctx: CopyContext, f: ChunkFile): Promise<number | 'packed' | CorruptChunk | null> {
  const id = Buffer.from(f.hex, 'hex');
  if (ctx.packer.has(id)) return 'packed';
  let stored: Buffer;
  try {
    stored = await fs.readFile(f.file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `upgrade: reading chunk file ${f.file} failed`, { cause: err });
  }
  const length = frameContentSize(stored);
  let check: ReadResult;
  if (length === null || length === 0 || length > ctx.chunkSize) {
    check = { status: 'corrupt', message: `chunk ${f.hex} is not a zstd frame of 1..${ctx.chunkSize} bytes` };
  } else {
    // the same check a format-2 read makes: frame size, decompression, SHA-256 = the name
    check = await ctx.store.workers().run<ReadResult>({ op: 'checkAt', file: f.file, offset: 0, storedLength: stored.length, blob: f.hex, length }, `checking chunk ${f.hex}`);
  }
  if (check.status === 'missing') return null;
  if (check.status === 'ok' && length !== null) {
    return (await ctx.packer.add(id, BlobType.Chunk, stored, length)) ? stored.length : 'packed';
  }
  const message = check.message ?? `chunk ${f.hex} is corrupt`;
  const quarantined = await quarantineChunk(ctx.root, f.hex, f.file);
  if (quarantined !== null) {
    await appendAudit(ctx.root, [{ actor: ctx.actor, action: 'chunk-quarantine', reason: `upgrade: ${message}`, details: { chunk: f.hex, file: quarantined } }]);
  }
  return { chunk: f.hex, message, quarantined };
}

function frameContentSize(buf: Buffer): number | null {
  try {
    return zstd.getFrameContentSize(buf);
  } catch {
    return null;
  }
}

async function names(dir: string): Promise<string[]> {
  return (await readdirOrEmpty(dir)).filter((n) => !n.startsWith('.')).sort();
}
