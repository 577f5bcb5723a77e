import { Readable } from 'stream';
import { AppError } from '../errors';
import type { DiskIndex, Repository } from '../repository';
import { openPoint } from './pointSource';

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
  const stream = Readable.from(
    (async function* () {
      try {
        let pos = start; // one generator, one reader: no concurrent updates
        while (pos <= end) {
          const i = Math.floor(pos / cs);
          const chunkStart = i * cs;
          const len = index.chunkLength(i);
          const data = index.isZero(i) ? Buffer.alloc(len) : await point.readChunk(index.digest(i), len);
          const from = pos - chunkStart;
          const to = Math.min(len, end - chunkStart + 1);
          yield data.subarray(from, to);
          pos = chunkStart + to;
        }
      } finally {
        await point.release(); // before the stream ends, so its reader sees the lease gone
      }
    })(),
    { objectMode: false, highWaterMark: 4 },
  );
  // destroyed before it was read from (the generator never ran): release it all the same
  stream.once('close', () => void point.release());
  return stream;
}
