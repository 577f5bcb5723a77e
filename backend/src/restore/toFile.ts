import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import { AppError } from '../errors';
import { NbdClient } from '../nbd';
import type { DiskIndex, Repository } from '../repository';
import { openPoint, type PointSource } from './pointSource';
import { runTool } from '../util/exec';
import { QemuNbdServer } from './qemuNbd';
import { dataRanges } from './sparse';

export interface RestoreToFileRequest {
  repository: Repository;
  pointId: string;
  device: string;
  out: string;
  format: 'raw' | 'qcow2';
  overwrite?: boolean;
  /** What the point's read lease says it is read for (default restore; an image built for a
   *  download says download). */
  purpose?: 'restore' | 'download';
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface RestoreToFileResult {
  virtualSize: number;
  bytesWritten: number;
}

const CONCURRENCY = 8;

/**
 * Writes one disk of a restore point to a local image file. Zero chunks, and zero runs inside
 * chunks, are never written, so holes stay holes (raw: sparse file; qcow2: unallocated
 * clusters). The image is built under a temporary name and renamed at the end: a failed or
 * aborted restore never leaves a file that looks complete.
 */
export async function restoreToFile(req: RestoreToFileRequest): Promise<RestoreToFileResult> {
  // read under a lease: no prune, delete or gc of any process removes the point meanwhile
  const point = await openPoint(req.repository, req.pointId, req.purpose ?? 'restore', `restore of disk ${req.device} to ${req.out}`);
  try {
    return await restoreFrom(point, req);
  } finally {
    await point.release();
  }
}

async function restoreFrom(point: PointSource, req: RestoreToFileRequest): Promise<RestoreToFileResult> {
  const index = await point.index(req.device);
  if (!req.overwrite && (await pathExists(req.out))) {
    throw new AppError('INVALID_ARGUMENT', `${req.out} already exists (choose another path or allow overwriting)`);
  }
  const tmp = `${req.out}.partial-${randomBytes(4).toString('hex')}`;
  let done = false;
  try {
    const written = req.format === 'raw' ? await writeRaw(req, point, index, tmp) : await writeQcow2(req, point, index, tmp);
    await fs.rename(tmp, req.out);
    done = true;
    return { virtualSize: index.virtualSize, bytesWritten: written };
  } catch (err) {
    if (err instanceof AppError && err.code !== 'REPO_IO_ERROR') throw err;
    throw new AppError('RESTORE_FAILED', `restore of disk ${req.device} from point ${req.pointId} to ${req.out} failed`, { cause: err });
  } finally {
    if (!done) await fs.rm(tmp, { force: true });
  }
}

async function writeRaw(req: RestoreToFileRequest, point: PointSource, index: DiskIndex, tmp: string): Promise<number> {
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await fh.truncate(index.virtualSize);
    const written = await forEachChunk(req, point, index, async (offset, data) => {
      let n = 0;
      for (const [s, e] of dataRanges(data)) {
        await fh.write(data, s, e - s, offset + s);
        n += e - s;
      }
      return n;
    });
    await fh.sync();
    return written;
  } finally {
    await fh.close();
  }
}

async function writeQcow2(req: RestoreToFileRequest, point: PointSource, index: DiskIndex, tmp: string): Promise<number> {
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', tmp, String(index.virtualSize)], { timeoutMs: 30_000 });
  const server = await QemuNbdServer.start({ file: tmp, format: 'qcow2', exportName: 'restore' });
  let nbd: NbdClient | undefined;
  try {
    nbd = await server.connect('restore');
    const client = nbd;
    const written = await forEachChunk(req, point, index, async (offset, data) => {
      let n = 0;
      for (const [s, e] of dataRanges(data)) {
        await client.write(offset + s, data.subarray(s, e), req.signal ? { signal: req.signal } : {});
        n += e - s;
      }
      return n;
    });
    await client.flush();
    await client.close();
    return written;
  } finally {
    if (nbd && !nbd.closed) nbd.destroy();
    await server.stop();
  }
}

/** Reads every stored chunk (checked against its digest) with a few in flight. */
async function forEachChunk(
  req: RestoreToFileRequest,
  point: PointSource,
  index: DiskIndex,
  write: (offset: number, data: Buffer) => Promise<number>,
): Promise<number> {
  const todo: number[] = [];
  for (let i = 0; i < index.count; i++) if (!index.isZero(i)) todo.push(i);
  let next = 0;
  let doneChunks = 0;
  let written = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed) {
      if (req.signal?.aborted) throw new AppError('ABORTED', 'restore aborted', { cause: req.signal.reason });
      const i = todo[next++];
      if (i === undefined) return;
      const data = await point.readChunk(index.digest(i), index.chunkLength(i));
      const n = await write(i * index.chunkSize, data); // not `written += await`: that reads `written` before the await
      point.recycle?.(data);
      written += n;
      req.onProgress?.(++doneChunks, todo.length);
    }
  };
  // Settle every worker before returning: the caller closes the file right after.
  const results = await Promise.allSettled(
    Array.from({ length: CONCURRENCY }, () =>
      worker().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  return written;
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
