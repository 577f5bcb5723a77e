import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import type { Repository } from '../repository';
import { rawImageStream } from './download';
import { restoreToFile } from './toFile';

/**
 * A point's disks as image files for downloads: raw bytes streamed straight from the repository
 * (any range, so a broken download resumes), or a qcow2 image built once into scratch space and
 * removed by `release` when its link expires.
 */
export class PointImages {
  constructor(
    private readonly repository: Repository,
    private readonly scratchDir: string,
  ) {}

  /** Guest bytes start..end (inclusive) of one disk of a point. */
  raw(pointId: string, device: string, start: number, end: number): Promise<Readable> {
    return rawImageStream(this.repository, pointId, device, start, end);
  }

  /** A qcow2 image of the disk, written to a scratch file of its own. */
  async qcow2(pointId: string, device: string): Promise<{ file: string; size: number }> {
    const file = path.join(this.scratchDir, `download-${randomBytes(8).toString('hex')}.qcow2`);
    try {
      await restoreToFile({ repository: this.repository, pointId, device, out: file, format: 'qcow2', purpose: 'download' });
      return { file, size: (await fs.stat(file)).size };
    } catch (err) {
      await fs.rm(file, { force: true });
      throw err;
    }
  }

  release(file: string): Promise<void> {
    return fs.rm(file, { force: true });
  }
}
