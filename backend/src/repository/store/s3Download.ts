import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../errors';
import { withRetry, type RetryPolicy } from './s3Retry';

/**
 * Reading object bodies: one ranged GET into a buffer (with a deadline on the body, which the
 * HTTP handler's timeouts do not cover once headers have arrived), and a whole-object download
 * into a local file with several ranged GETs in flight (restores fetch packs this way). Every
 * range names the version read first, so a concurrent overwrite cannot mix two versions.
 */

export interface RangeRead {
  client: S3Client;
  bucket: string;
  key: string;
  what: string;
  retry: RetryPolicy;
  versionId?: string;
  /** The ETag read first (unversioned buckets): a different object → 412, never mixed bytes. */
  etag?: string;
}

/** Bytes [offset, offset+length) of the object; an empty buffer past the end (RGW's 416). */
export async function readRange(r: RangeRead, offset: number, length: number | undefined): Promise<Buffer> {
  const range = length === undefined ? undefined : `bytes=${offset}-${offset + length - 1}`;
  return withRetry(r.what, r.retry, async (signal) => {
    try {
      const out = await r.client.send(new GetObjectCommand({ Bucket: r.bucket, Key: r.key, Range: range, VersionId: r.versionId, IfMatch: r.etag }), { abortSignal: signal });
      if (!out.Body) return Buffer.alloc(0);
      return await collect(out.Body as NodeJS.ReadableStream, signal);
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (range && (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416)) return Buffer.alloc(0);
      throw err;
    }
  });
}

/** Reads a response body to its end; the signal (the attempt's deadline) destroys it. */
function collect(body: NodeJS.ReadableStream, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stream = body as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
    const onAbort = (): void => {
      stream.destroy?.(new Error('response body timed out'));
      reject(signal.reason instanceof Error ? signal.reason : new Error('response body timed out'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
    stream.on('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * Downloads `size` bytes of the object into `file` through a temp file in the same directory
 * (fsynced, then renamed over `file`), `chunk` bytes per GET with `inFlight` GETs at once.
 */
export async function downloadRanges(r: RangeRead, size: number, file: string, chunk: number, inFlight: number): Promise<number> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.part-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await fs.open(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    const count = Math.ceil(size / chunk);
    let next = 0;
    let failure: { err: unknown } | undefined;
    const lane = async (): Promise<void> => {
      while (!failure && next < count) {
        const i = next++;
        try {
          const want = Math.min(chunk, size - i * chunk);
          const buf = await readRange(r, i * chunk, want);
          if (buf.length !== want) {
            throw new AppError('STORE_CORRUPT', `${r.what}: bytes ${i * chunk}+${want} came back as ${buf.length} bytes (the object is shorter than its listed size ${size})`);
          }
          await fh.write(buf, 0, buf.length, i * chunk);
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(1, inFlight), Math.max(1, count)) }, lane));
    if (failure) throw failure.err;
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, file);
    renamed = true;
    return size;
  } finally {
    await fh.close().catch(() => undefined);
    if (!renamed) await fs.rm(tmp, { force: true });
  }
}
