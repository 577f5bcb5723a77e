import type { Repository } from '../../backend/src/repository';

/** Reads through a point opened as every reader opens one (under a read lease), then releases
 *  it: the repository has no unleased way to read chunks. */
export async function withPoint<T>(repo: Repository, pointId: string, fn: (r: Awaited<ReturnType<Repository['openPoint']>>) => Promise<T>): Promise<T> {
  const r = await repo.openPoint(pointId, { purpose: 'verify', holder: 'test' });
  try {
    return await fn(r);
  } finally {
    await r.release();
  }
}

/** A whole disk image of a point, every chunk checked. */
export function readImage(repo: Repository, pointId: string, device: string): Promise<Buffer> {
  return withPoint(repo, pointId, async (r) => {
    const index = await r.index(device);
    const parts: Buffer[] = [];
    for (let i = 0; i < index.count; i++) parts.push(await r.readChunk(index.digest(i), index.chunkLength(i)));
    return Buffer.concat(parts);
  });
}
