import { Readable } from 'stream';
import { AppError } from '../errors';
import type { DiskIndex, Repository } from '../repository';
import { openPoint } from './pointSource';

/** Chunks read ahead of the one being sent. */
const READ_AHEAD = 8;

/**
 * The guest-visible bytes [start, end] (inclusive, as HTTP ranges are) of one disk of a point,
 * as a stream read chunk by chunk from the repository: every chunk is checked against its
 * digest on the way, zero chunks cost no I/O. What a browser download of a raw image reads;
 * a Range request resumes an interrupted one.
 */
export async function rawImageStream(repo: Repository, pointId: string, device: string, start: number, end: number): Promise<Readable> {
  // read under a lease, released when the stream closes (ended, failed or destroyed)
  const point = await openPoint(repo, pointId, 'download', `download of disk ${device}, bytes ${start}-${end}`);
  let index: DiskIndex;
  try {
    index = await point.index(device);
    if (!(start >= 0 && end >= start && end < index.virtualSize)) {
      throw new AppError('INVALID_ARGUMENT', `range ${start}-${end} is outside disk ${device} (${index.virtualSize} bytes)`);
    }
  } catch (err) {
    await point.release();
    throw err;
  }
  const cs = index.chunkSize;
  const last = Math.floor(end / cs);
  const zeros = Buffer.alloc(cs);
  // reads of the next chunks already in flight (the client reads sequentially, the workers
  // decompress and check in parallel, and a pack is read in large pieces)
  const ahead = new Map<number, Promise<Buffer>>();
  const fetch = (i: number): void => {
    if (i > last || ahead.has(i)) return;
    const len = index.chunkLength(i);
    const p = index.isZero(i) ? Promise.resolve(zeros.subarray(0, len)) : point.readChunk(index.digest(i), len);
    p.catch(() => undefined); // awaited below, or dropped with the stream
    ahead.set(i, p);
  };
  const stream = Readable.from(
    (async function* () {
      try {
        let pos = start; // one generator, one reader: no concurrent updates
        while (pos <= end) {
          const i = Math.floor(pos / cs);
          const chunkStart = i * cs;
          const len = index.chunkLength(i);
          for (let k = 0; k < READ_AHEAD; k++) fetch(i + k);
          const data = await (ahead.get(i) as Promise<Buffer>);
          ahead.delete(i);
          const from = pos - chunkStart;
          const to = Math.min(len, end - chunkStart + 1);
          yield data.subarray(from, to);
          pos = chunkStart + to;
        }
      } finally {
        await Promise.allSettled(ahead.values()); // no read outlives the lease
        await point.release(); // before the stream ends, so its reader sees the lease gone
      }
    })(),
    { objectMode: false, highWaterMark: 4 },
  );
  // destroyed before it was read from (the generator never ran): release it all the same
  stream.once('close', () => void point.release());
  return stream;
}
