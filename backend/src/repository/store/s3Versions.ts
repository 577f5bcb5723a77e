import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { AppError } from '../../errors';
import { withRetry, type RetryPolicy } from './s3Retry';

/**
 * What a key or a prefix holds besides its current object: every version and delete marker of
 * one key (a delete must remove them all, or an Object Lock bucket keeps the bytes), and the
 * multipart uploads a crash or a network cut left unfinished (their parts stay stored, and
 * billed, until aborted).
 */

export interface KeyVersion {
  versionId: string;
  deleteMarker: boolean;
}

/** Every version and delete marker of exactly `key`, newest first (the store's order). */
export async function listKeyVersions(client: S3Client, bucket: string, key: string, pageSize: number, retry: RetryPolicy, what: string): Promise<KeyVersion[]> {
  const found: { v: KeyVersion; at: number; order: number }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await withRetry(what, retry, (signal) =>
      client.send(
        new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, MaxKeys: pageSize, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
        { abortSignal: signal },
      ),
    );
    const entries = [
      ...(page.Versions ?? []).map((v) => ({ key: v.Key, id: v.VersionId, at: v.LastModified, marker: false })),
      ...(page.DeleteMarkers ?? []).map((m) => ({ key: m.Key, id: m.VersionId, at: m.LastModified, marker: true })),
    ];
    let pastKey = false;
    for (const e of entries) {
      if (e.key === key && e.id) found.push({ v: { versionId: e.id, deleteMarker: e.marker }, at: e.at?.getTime() ?? 0, order: found.length });
      else if (e.key !== undefined && e.key > key) pastKey = true;
    }
    if (!page.IsTruncated || pastKey) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
    if (!keyMarker) break;
  }
  // versions and markers come in two lists: merge them newest first (ties keep the store's order)
  found.sort((a, b) => b.at - a.at || a.order - b.order);
  return found.map((f) => f.v);
}

/** Aborts the multipart uploads under `prefix` initiated before `olderThan`; returns how many. */
export async function abortUploadsBefore(client: S3Client, bucket: string, prefix: string, olderThan: Date, retry: RetryPolicy, location: string): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadMarker: string | undefined;
  for (;;) {
    const page = await withRetry(`listing unfinished uploads in ${location}`, retry, (signal) =>
      client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadMarker }), { abortSignal: signal }),
    );
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated.getTime() >= olderThan.getTime()) continue;
      try {
        await withRetry(`aborting the unfinished upload of ${u.Key} in ${location}`, retry, (signal) =>
          client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal: signal }),
        );
        aborted++;
      } catch (err) {
        // gone meanwhile (completed or aborted by someone else): nothing left to free
        if (!(err instanceof AppError && err.code === 'STORE_NOT_FOUND')) throw err;
      }
    }
    if (!page.IsTruncated || !page.NextKeyMarker) break;
    keyMarker = page.NextKeyMarker;
    uploadMarker = page.NextUploadIdMarker;
  }
  return aborted;
}
