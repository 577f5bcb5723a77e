import type { ImageioClient } from '../../engine';
import type { Segment } from './segments';

export interface UploadCounters {
  dataBytes: number;
  dataRequests: number;
  zeroBytes: number;
  zeroRequests: number;
}

/** Where an upload failed: the offset of the first request (or read) that failed, and why. */
export class UploadFailure extends Error {
  constructor(
    readonly offset: number,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Sends the segments to imageio with `inFlight` requests at a time, each on its own byte range:
 * data with `PUT ?flush=n`, zero ranges with `PATCH zero`, then one final `PATCH flush`. The
 * first failure stops the others at once (their requests are aborted) and is reported with its
 * offset; nothing is retried beyond the transport's one resend on a stale socket.
 */
export async function uploadSegments(
  imageio: ImageioClient,
  segments: AsyncIterator<Segment>,
  o: { inFlight: number; timeoutMs: number; signal?: AbortSignal; position: () => number; onBytes?: (n: number) => void },
): Promise<UploadCounters> {
  const counters: UploadCounters = { dataBytes: 0, dataRequests: 0, zeroBytes: 0, zeroRequests: 0 };
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort(o.signal?.reason);
  if (o.signal?.aborted) onOuterAbort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let failure: UploadFailure | undefined;
  const fail = (offset: number, err: unknown): void => {
    failure ??= new UploadFailure(offset, err);
    if (!stop.signal.aborted) stop.abort(err);
  };
  const call = { signal: stop.signal, timeoutMs: o.timeoutMs };

  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      let next: IteratorResult<Segment>;
      try {
        next = await segments.next();
      } catch (err) {
        fail(o.position(), err);
        return;
      }
      if (next.done) return;
      const seg = next.value;
      try {
        if (seg.kind === 'data') {
          counters.dataRequests++;
          await imageio.put(seg.offset, seg.buffers, call);
          counters.dataBytes += seg.length;
        } else {
          counters.zeroRequests++;
          await imageio.zero(seg.offset, seg.length, call);
          counters.zeroBytes += seg.length;
        }
        o.onBytes?.(seg.length);
      } catch (err) {
        fail(seg.offset, err);
        return;
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.max(1, o.inFlight) }, () => worker()));
    if (failure) throw failure;
    if (stop.signal.aborted) throw new UploadFailure(o.position(), stop.signal.reason);
    try {
      await imageio.flush(call);
    } catch (err) {
      throw new UploadFailure(o.position(), err);
    }
    return counters;
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    await segments.return?.(undefined).catch(() => undefined);
  }
}
