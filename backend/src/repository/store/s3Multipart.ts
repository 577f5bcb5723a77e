import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import { AppError, describeError } from '../../errors';
import { withRetry, type RetryPolicy } from './s3Retry';

/**
 * Multipart upload of one large object (a pack file): parts read from the source by ranges (the
 * file is never held whole in memory), several in flight, each with its own Content-MD5, and the
 * upload aborted when any part fails so that no orphan parts stay stored (and billed). Retention
 * is NOT sent on CreateMultipartUpload: Ceph 16 ignores those headers there (ceph-lab.md, "What
 * does not work" 1), so the caller applies it with PutObjectRetention after completion.
 */

/** Where the bytes come from: a buffer or a file, read by ranges. */
export interface PartSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

/** Test hooks of the multipart path (never set in production). */
export interface MultipartHooks {
  /** Replaces the Content-MD5 sent with a part (tests force a BadDigest). */
  contentMd5?: (md5: string) => string;
  /** Called after each part is stored; a throw acts as a network cut at that point. */
  afterPart?: (partNumber: number) => void | Promise<void>;
  /** Simulates the process dying mid-upload: no abort on failure, the upload stays behind. */
  skipAbortOnFailure?: boolean;
}

export interface MultipartParams {
  client: S3Client;
  bucket: string;
  /** Full key (store prefix included). */
  key: string;
  /** For messages: `PUT key to s3://…`. */
  what: string;
  partSize: number;
  inFlight: number;
  retry: RetryPolicy;
  contentType?: string;
  hooks?: MultipartHooks;
}

/** S3 allows at most 10 000 parts; larger objects get larger parts. */
const MAX_PARTS = 10_000;

export async function uploadMultipart(p: MultipartParams, src: PartSource): Promise<{ versionId?: string }> {
  const partSize = Math.max(p.partSize, Math.ceil(src.size / MAX_PARTS / (1 << 20)) * (1 << 20));
  const count = Math.max(1, Math.ceil(src.size / partSize));
  const created = await withRetry(`${p.what} (start multipart)`, p.retry, (signal) =>
    p.client.send(new CreateMultipartUploadCommand({ Bucket: p.bucket, Key: p.key, ContentType: p.contentType }), { abortSignal: signal }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new AppError('STORE_UNAVAILABLE', `${p.what}: the store started a multipart upload without an UploadId`);
  try {
    const parts = await uploadParts(p, src, uploadId, partSize, count);
    const done = await withRetry(`${p.what} (complete multipart)`, p.retry, (signal) =>
      p.client.send(
        new CompleteMultipartUploadCommand({ Bucket: p.bucket, Key: p.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
        { abortSignal: signal },
      ),
    );
    // Ceph 16 answers Complete with an empty <ETag/>: the caller HEADs the object for facts
    return { versionId: done.VersionId };
  } catch (err) {
    if (p.hooks?.skipAbortOnFailure) throw err;
    try {
      await withRetry(`${p.what} (abort multipart ${uploadId})`, p.retry, (signal) =>
        p.client.send(new AbortMultipartUploadCommand({ Bucket: p.bucket, Key: p.key, UploadId: uploadId }), { abortSignal: signal }),
      );
    } catch (abortErr) {
      // the upload stays behind; abortStaleUploads (run by GC) removes it later
      if (err instanceof AppError) {
        throw new AppError(err.code, `${err.message} (and aborting the upload failed: ${describeError(abortErr)})`, { cause: err });
      }
    }
    throw err;
  }
}

/** Uploads every part with `inFlight` lanes; on the first failure no new part starts, the
 *  running ones are awaited (so that the abort comes after them), then the failure is thrown. */
async function uploadParts(p: MultipartParams, src: PartSource, uploadId: string, partSize: number, count: number): Promise<CompletedPart[]> {
  const parts: CompletedPart[] = new Array<CompletedPart>(count);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < count) {
      const index = next++;
      try {
        parts[index] = await uploadPart(p, src, uploadId, index, partSize);
        await p.hooks?.afterPart?.(index + 1);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, p.inFlight), count) }, lane));
  if (failure) throw failure.err;
  return parts;
}

async function uploadPart(p: MultipartParams, src: PartSource, uploadId: string, index: number, partSize: number): Promise<CompletedPart> {
  const offset = index * partSize;
  const body = await src.read(offset, Math.min(partSize, src.size - offset));
  let md5 = createHash('md5').update(body).digest('base64');
  if (p.hooks?.contentMd5) md5 = p.hooks.contentMd5(md5);
  const partNumber = index + 1;
  const out = await withRetry(`${p.what} (part ${partNumber})`, p.retry, (signal) =>
    p.client.send(
      new UploadPartCommand({ Bucket: p.bucket, Key: p.key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentMD5: md5, ContentLength: body.length }),
      { abortSignal: signal },
    ),
  );
  if (!out.ETag) throw new AppError('STORE_UNAVAILABLE', `${p.what}: the store stored part ${partNumber} without an ETag`);
  return { PartNumber: partNumber, ETag: out.ETag };
}

/** The body as ranges: a buffer directly, a file through a handle opened per read. */
export async function sourceOf(body: Buffer | { file: string }, what: string): Promise<PartSource> {
  if (Buffer.isBuffer(body)) return { size: body.length, read: (o, n) => Promise.resolve(body.subarray(o, o + n)) };
  const file = body.file;
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch (err) {
    throw new AppError('REPO_IO_ERROR', `${what}: the local file ${file} cannot be read`, { cause: err });
  }
  return {
    size,
    read: async (offset, length) => {
      const fh = await fs.open(file, 'r');
      try {
        const buf = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) throw new AppError('REPO_IO_ERROR', `${what}: ${file} shrank while being uploaded`);
          done += bytesRead;
        }
        return buf;
      } finally {
        await fh.close();
      }
    },
  };
}
