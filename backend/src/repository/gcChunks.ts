/**
 * Garbage collection of format 1 (FORMAT.md §14): the chunk digests of each point index are the
 * marks, and the sweep walks chunks/ removing every chunk file neither marked nor younger than
 * the cutoff, through gc-pending/ so that a writer that reused it meanwhile is seen. The shared
 * protocol around it (locks, cutoff, marking, trash, audit) is gc.ts.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { isErrno } from './atomicFile';
import { DIGEST_LENGTH } from './digest';
import { DiskIndex } from './diskIndex';
import { collectGarbage, listNames, putBack, type GcContext, type GcFormat, type GcOptions, type Marks, type SweepResult } from './gc';
import type { GcReport } from './types';
import { chunkPath, CHUNKS_DIR, GC_PENDING_DIR, isHexDigest } from './layout';

/** Format 1's collection (Repository.gc). */
export function collectChunkGarbage(ctx: GcContext, opts: GcOptions = {}): Promise<GcReport> {
  const root = ctx.root;
  const format: GcFormat = {
    pendingHome: (name) => (isHexDigest(name) ? chunkPath(root, name) : undefined),
    markIndex: (buf, file, marks) => {
      markDigests(DiskIndex.parse(buf, file), marks);
      return Promise.resolve();
    },
    sweep: (s) => sweepChunks(root, s.marks.set, s.leaseMarks.set, s.cutoffMs, s.dryRun),
  };
  return collectGarbage(ctx, opts, format);
}

function markDigests(index: DiskIndex, marks: Marks): void {
  const raw = index.copyDigests();
  for (let off = 0; off < raw.length; off += DIGEST_LENGTH) {
    let zero = true;
    for (let i = off; i < off + DIGEST_LENGTH; i++) {
      if (raw[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (!zero) marks.add(raw.toString('latin1', off, off + DIGEST_LENGTH));
  }
}

/**
 * Each unreferenced chunk older than the cutoff: rename it into gc-pending/ (from then on a
 * writer no longer finds it and stores the content again), re-read its mtime — if a writer
 * reused it meanwhile, put it back —, else unlink it.
 */
async function sweepChunks(root: string, marked: ReadonlySet<string>, leaseMarked: ReadonlySet<string>, cutoffMs: number, dryRun: boolean): Promise<SweepResult> {
  const out = { chunksScanned: 0, chunksRemoved: 0, bytesRemoved: 0, chunksKeptYoung: 0, chunksPutBack: 0, chunksKeptForLeases: 0 };
  const chunksDir = path.join(root, CHUNKS_DIR);
  const pending = path.join(root, GC_PENDING_DIR);
  if (!dryRun) await fs.mkdir(pending, { recursive: true });
  for (const a of await listNames(chunksDir)) {
    if (!/^[0-9a-f]{2}$/.test(a)) continue;
    for (const b of await listNames(path.join(chunksDir, a))) {
      if (!/^[0-9a-f]{2}$/.test(b)) continue;
      const dir = path.join(chunksDir, a, b);
      for (const hex of await listNames(dir)) {
        if (!isHexDigest(hex) || !hex.startsWith(a + b)) continue;
        out.chunksScanned++;
        const key = Buffer.from(hex, 'hex').toString('latin1');
        if (marked.has(key)) continue;
        if (leaseMarked.has(key)) {
          out.chunksKeptForLeases++;
          continue;
        }
        const file = path.join(dir, hex);
        const st = await fs.stat(file).catch((err: unknown) => {
          if (isErrno(err, 'ENOENT')) return undefined;
          throw new AppError('REPO_IO_ERROR', `gc: stat ${file} failed`, { cause: err });
        });
        if (!st) continue;
        if (st.mtimeMs >= cutoffMs) {
          out.chunksKeptYoung++;
          continue;
        }
        if (dryRun) {
          out.chunksRemoved++;
          out.bytesRemoved += st.size;
          continue;
        }
        const aside = path.join(pending, hex);
        try {
          await fs.rename(file, aside);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue;
          throw new AppError('REPO_IO_ERROR', `gc: moving chunk ${hex} aside failed`, { cause: err });
        }
        // A writer that found the chunk before the rename set its mtime (and will use it): put it back.
        const moved = await fs.stat(aside);
        if (moved.mtimeMs >= cutoffMs) {
          await putBack(aside, chunkPath(root, hex), `chunk ${hex}`);
          out.chunksPutBack++;
          continue;
        }
        await fs.unlink(aside);
        out.chunksRemoved++;
        out.bytesRemoved += moved.size;
      }
    }
  }
  return out;
}
