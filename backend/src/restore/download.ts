import { Readable } from 'stream';
import { AppError } from '../errors';
import type { Repository } from '../repository';

/**
 * The guest-visible bytes [start, end] (inclusive, as HTTP ranges are) of one disk of a point,
 * as a stream read chunk by chunk from the repository: every chunk is checked against its
 * digest on the way, zero chunks cost no I/O. What a browser download of a raw image reads;
 * a Range request resumes an interrupted one.
 */
export async function rawImageStream(repo: Repository, pointId: string, device: string, start: number, end: number): Promise<Readable> {
  const index = await repo.readIndex(pointId, device);
  if (!(start >= 0 && end >= start && end < index.virtualSize)) {
    throw new AppError('INVALID_ARGUMENT', `range ${start}-${end} is outside disk ${device} (${index.virtualSize} bytes)`);
  }
  const cs = index.chunkSize;
  return Readable.from(
    (async function* () {
      let pos = start; // one generator, one reader: no concurrent updates
      while (pos <= end) {
        const i = Math.floor(pos / cs);
        const chunkStart = i * cs;
        const len = index.chunkLength(i);
        const data = index.isZero(i) ? Buffer.alloc(len) : await repo.readChunk(index.digest(i), len);
        const from = pos - chunkStart;
        const to = Math.min(len, end - chunkStart + 1);
        yield data.subarray(from, to);
        pos = chunkStart + to;
      }
    })(),
    { objectMode: false, highWaterMark: 4 },
  );
}
