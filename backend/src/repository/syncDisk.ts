/**
 * The byte level of `repo sync` (sync.ts): one disk of a point read from the source repository
 * and written into the destination's point writer, and a disk read back for the check. The two
 * repositories may differ in chunk size (powers of two), encryption and keys, so nothing stored
 * is copied as it is: the destination hashes, deduplicates and stores the plain bytes with its
 * own ids. Only which chunks changed is taken from the source's indexes (by comparing the ids
 * of the point and of its parent within the source, where they mean the same content).
 */
import { createHash } from 'crypto';
import { AppError } from '../errors';
import type { DiskIndex } from './diskIndex';
import type { DiskWriter } from './diskWriter';
import type { PointReader } from './pointReader';

/** Chunk reads kept in flight ahead of the one being used, and chunk puts in flight. */
const READ_AHEAD = 8;
const PUTS_IN_FLIGHT = 8;

export interface DiskCopyStats {
  /** Plain bytes of stored (non-zero) chunks read from the source. */
  bytesRead: number;
  /** Destination chunks handed to its writer (changed or, without a usable parent, all). */
  chunksWritten: number;
}

/**
 * Reads chunks 0 … count−1 with up to READ_AHEAD reads in flight and hands each to `use` in
 * order. Reads still in flight when `use` or a read fails are waited for before it rejects, so
 * that none outlives the caller's read lease.
 */
export async function readInOrder(count: number, read: (i: number) => Promise<Buffer>, use: (i: number, data: Buffer) => Promise<void> | void): Promise<void> {
  const pending = new Map<number, Promise<Buffer>>();
  let next = 0;
  try {
    for (let i = 0; i < count; i++) {
      while (next < count && pending.size < READ_AHEAD) {
        const p = read(next);
        p.catch(() => undefined); // observed below, or waited for in the finally
        pending.set(next++, p);
      }
      const data = await (pending.get(i) as Promise<Buffer>);
      pending.delete(i);
      await use(i, data);
    }
  } finally {
    await Promise.allSettled(pending.values());
  }
}

/** SHA-256 (hex) of a whole disk of an open point, every chunk read and checked. */
export async function diskSha256(reader: PointReader, device: string, signal?: AbortSignal): Promise<string> {
  const index = await reader.index(device);
  const hash = createHash('sha256');
  await readInOrder(
    index.count,
    (i) => reader.readChunk(index.digest(i), index.chunkLength(i)),
    (i, data) => {
      checkSignal(signal);
      hash.update(data);
      if (!index.isZero(i)) reader.recycle(data);
    },
  );
  return hash.digest('hex');
}

/**
 * Copies one disk: reads every chunk of `source` (its index `index`) in order, hashes the whole
 * disk, and gives `out` the destination chunks that changed since the parent — all of them when
 * `parent` (the source's index of the same disk in the point the destination's base copies) is
 * null. A destination chunk is changed when any source chunk it overlaps has another id than in
 * `parent`. Returns the disk's SHA-256 (hex); `out` is finished by the caller.
 */
export async function copyDisk(
  source: PointReader,
  index: DiskIndex,
  parent: DiskIndex | null,
  out: DiskWriter,
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<{ sha256: string; stats: DiskCopyStats }> {
  const size = index.virtualSize;
  if (out.virtualSize !== size) throw new AppError('INVALID_ARGUMENT', `disk ${out.device}: the copy has ${out.virtualSize} bytes, the source ${size}`);
  const csA = index.chunkSize;
  const csB = out.chunkSize;
  const changedA = (i: number): boolean => parent === null || !index.digest(i).equals(parent.digest(i));
  const changedB = (j: number): boolean => {
    if (parent === null) return true;
    const first = Math.floor((j * csB) / csA);
    const last = Math.floor((Math.min((j + 1) * csB, size) - 1) / csA);
    for (let k = first; k <= last; k++) if (changedA(k)) return true;
    return false;
  };
  const stats: DiskCopyStats = { bytesRead: 0, chunksWritten: 0 };
  const hash = createHash('sha256');
  const puts = new Set<Promise<void>>();
  let putFailure: Error | undefined;
  /** The destination chunk being assembled: null bytes while everything in it is zero. */
  let cur: { j: number; data: Buffer | null } | null = null;

  const emit = async (j: number, data: Buffer | null): Promise<void> => {
    stats.chunksWritten++;
    if (data === null) {
      out.putZero(j);
      return;
    }
    while (puts.size >= PUTS_IN_FLIGHT) await Promise.race(puts);
    if (putFailure !== undefined) throw putFailure;
    const p: Promise<void> = out.putChunk(j, data).then(
      () => undefined,
      (err: unknown) => {
        putFailure ??= err instanceof Error ? err : new AppError('REPO_IO_ERROR', `disk ${out.device}: storing chunk ${j} failed`, { cause: err });
      },
    );
    puts.add(p);
    void p.finally(() => puts.delete(p));
  };

  const zeros = Buffer.alloc(csA);
  try {
    await readInOrder(
      index.count,
      (i) => (index.isZero(i) ? Promise.resolve(zeros.subarray(0, index.chunkLength(i))) : source.readChunk(index.digest(i), index.chunkLength(i))),
      async (i, data) => {
        checkSignal(opts.signal);
        if (putFailure !== undefined) throw putFailure;
        const zero = index.isZero(i);
        const lenA = data.length;
        hash.update(data);
        if (!zero) stats.bytesRead += lenA;
        const posA = i * csA;
        for (let off = 0; off < lenA; ) {
          const pos = posA + off;
          const j = Math.floor(pos / csB);
          const jStart = j * csB;
          const jEnd = Math.min(jStart + csB, size);
          const take = Math.min(lenA - off, jEnd - pos);
          if (changedB(j)) {
            if (cur === null || cur.j !== j) cur = { j, data: null };
            if (!zero) {
              cur.data ??= Buffer.alloc(jEnd - jStart);
              data.copy(cur.data, pos - jStart, off, off + take);
            }
            if (pos + take === jEnd) {
              const done: { j: number; data: Buffer | null } = cur;
              cur = null;
              await emit(done.j, done.data);
            }
          }
          off += take;
        }
        if (!zero) source.recycle(data);
        opts.onBytes?.(lenA);
      },
    );
  } finally {
    await Promise.allSettled([...puts]);
  }
  if (putFailure !== undefined) throw putFailure;
  return { sha256: hash.digest('hex'), stats };
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AppError('ABORTED', 'repository sync aborted', { cause: signal.reason });
}
