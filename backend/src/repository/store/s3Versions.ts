import { AbortMultipartUploadCommand, GetObjectRetentionCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { AppError } from '../../errors';
import type { Retention } from './objectStore';
import { failureCode } from './s3Errors';
import { withRetry, type RetryPolicy } from './s3Retry';

/**
 * What a key or a prefix holds besides its current object: every version and delete marker of
 * one key (a delete must remove them all, or an Object Lock bucket keeps the bytes), and the
 * retention of each version (a delete is refused as a whole when any runs), and the
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

/** The retention of one version, or undefined (none set, or not readable with our rights). */
export async function readVersionRetention(client: S3Client, bucket: string, full: string, versionId: string | undefined, retry: RetryPolicy, location: string): Promise<Retention | undefined> {
  try {
    const out = await withRetry(`reading the retention of ${full} in ${location}`, retry, (signal) =>
      client.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: full, VersionId: versionId }), { abortSignal: signal }),
    );
    const r = out.Retention;
    if (!r?.Mode || !r.RetainUntilDate) return undefined;
    return { mode: r.Mode === 'COMPLIANCE' ? 'compliance' : 'governance', until: new Date(r.RetainUntilDate) };
  } catch (err) {
    // Ceph: ObjectLockConfigurationNotFoundError (404) when the version has no retention
    if (err instanceof AppError && ['STORE_NOT_FOUND', 'STORE_ACCESS_DENIED'].includes(err.code)) return undefined;
    if (failureCode(err) === 'InvalidRequest') return undefined;
    throw err;
  }
}

/** The latest retention date still running among `versions` of `full` (markers have none);
 *  with `bypassGovernance`, GOVERNANCE retention does not hold (the delete may bypass it). */
export async function latestRetention(
  client: S3Client,
  bucket: string,
  full: string,
  versions: readonly KeyVersion[],
  bypassGovernance: boolean,
  retry: RetryPolicy,
  location: string,
): Promise<Retention | null> {
  let latest: Retention | null = null;
  const now = Date.now();
  for (const v of versions) {
    if (v.deleteMarker) continue;
    const r = await readVersionRetention(client, bucket, full, v.versionId, retry, location);
    if (!r || (bypassGovernance && r.mode === 'governance')) continue;
    if (r.until.getTime() > now && (!latest || r.until > latest.until)) latest = r;
  }
  return latest;
}
