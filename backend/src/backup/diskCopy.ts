import { setMaxListeners } from 'events';
import type { DiskWriter } from '../repository';
import { planChunks, type ChunkWork } from './chunkPlan';
import type { DiskSource } from './diskSource';

export interface DiskCopyResult {
  bytesRead: number;
  chunksPlanned: number;
}

/** Reads in flight per disk: enough to keep QEMU's NBD server and both cores busy while the
 *  repository's workers hash and compress. */
const DEFAULT_CONCURRENCY = 16;

/**
 * Copies the chunks of one disk the point needs from a source (an NBD export, an imageio
 * ticket) into the repository. Dirty extents (incremental) or all chunks (full) are read; ranges
 * the source reports as zeros are recorded as zero chunks without reading. The first failure
 * stops every other reader.
 */
export async function copyDisk(p: {
  source: DiskSource;
  /** More connections to the same export for the data reads (a tunnel's channel caps each). */
  extraReaders?: DiskSource[];
  writer: DiskWriter;
  chunkSize: number;
  dirtyContext: string | undefined;
  signal?: AbortSignal;
  onPlanned?: (bytesToRead: number) => void;
  onBytes?: (n: number) => void;
  concurrency?: number;
}): Promise<DiskCopyResult> {
  const size = p.source.size;
  const allocation = await p.source.extents('base:allocation', 0, size, { ...(p.signal ? { signal: p.signal } : {}) });
  const dirty = p.dirtyContext ? await p.source.extents(p.dirtyContext, 0, size, { ...(p.signal ? { signal: p.signal } : {}) }) : undefined;
  const plan = planChunks({ size, chunkSize: p.chunkSize, allocation, ...(dirty ? { dirty } : {}) });
  p.onPlanned?.(plan.reduce((n, w) => n + (w.action === 'read' ? w.length : 0), 0));

  const stop = new AbortController();
  // every read in flight listens on this signal; more than Node's default 10 is intended
  setMaxListeners(4 * (p.concurrency ?? DEFAULT_CONCURRENCY), stop.signal);
  const onOuterAbort = (): void => stop.abort(p.signal?.reason);
  p.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let next = 0;
  let bytesRead = 0;
  const readers = [p.source, ...(p.extraReaders ?? [])];
  const worker = async (reader: DiskSource): Promise<void> => {
    // Each reader recycles the buffer the repository hands back: fresh megabyte buffers
    // would cost a page fault per 4 KiB of every chunk.
    let spare: Buffer | undefined;
    while (!stop.signal.aborted) {
      const w: ChunkWork | undefined = plan[next++];
      if (!w) return;
      if (w.action === 'zero') {
        p.writer.putZero(w.index);
        continue;
      }
      const into = spare?.length === w.length ? spare : undefined;
      spare = undefined;
      const data = await reader.read(w.offset, w.length, { signal: stop.signal, ...(into ? { into } : {}) });
      bytesRead += w.length;
      p.onBytes?.(w.length);
      spare = await p.writer.putChunk(w.index, data);
    }
  };
  try {
    const workers = Array.from({ length: p.concurrency ?? DEFAULT_CONCURRENCY }, (_, i) =>
      worker(readers[i % readers.length] as DiskSource).catch((err: unknown) => {
        if (!stop.signal.aborted) stop.abort(err);
        throw err;
      }),
    );
    const results = await Promise.allSettled(workers);
    if (stop.signal.aborted) throw firstCause(stop.signal.reason, results);
  } finally {
    p.signal?.removeEventListener('abort', onOuterAbort);
  }
  return { bytesRead, chunksPlanned: plan.length };
}

/** The error that stopped the copy, not the aborts it caused in the other readers. */
function firstCause(reason: unknown, results: PromiseSettledResult<void>[]): unknown {
  if (reason !== undefined) return reason;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  return failed?.reason;
}
