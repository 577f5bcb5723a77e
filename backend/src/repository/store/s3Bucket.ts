import { CreateBucketCommand, GetObjectLockConfigurationCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { AppError } from '../../errors';
import type { BucketLock } from './objectStore';
import { DEFAULT_TUNING, makeS3Client } from './s3Client';
import type { S3Config } from './s3Config';
import { failureCode, storeError } from './s3Errors';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './s3Retry';

/**
 * Bucket-level facts and set-up: whether Object Lock is on, and creating the repository's bucket
 * (`repo init`). Object Lock can only be chosen at creation on Ceph 16 (enabling it on an existing
 * versioned bucket → 409 InvalidBucketState, ceph-lab.md deviation 4), so the bucket is created
 * with it. No default retention is set: the product gives each object its own retention.
 */

/** The bucket's Object Lock state; a bucket that never had it is `{ enabled: false }`. */
export async function readBucketLock(client: S3Client, bucket: string, retry: RetryPolicy, location: string): Promise<BucketLock> {
  try {
    const out = await withRetry(`reading the Object Lock configuration of ${location}`, retry, (signal) =>
      client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), { abortSignal: signal }),
    );
    const cfg = out.ObjectLockConfiguration;
    if (cfg?.ObjectLockEnabled !== 'Enabled') return { enabled: false };
    const rule = cfg.Rule?.DefaultRetention;
    if (!rule?.Mode) return { enabled: true };
    const days = rule.Days ?? (rule.Years ?? 0) * 365;
    return { enabled: true, defaultRetention: { mode: rule.Mode === 'COMPLIANCE' ? 'compliance' : 'governance', days } };
  } catch (err) {
    const code = failureCode(err);
    if (code === 'ObjectLockConfigurationNotFoundError' || code === 'ObjectLockConfigurationNotFound') return { enabled: false };
    throw err;
  }
}

/** HEAD the bucket: STORE_BUCKET_MISSING when it is not there (HEAD answers carry no error code). */
export async function checkBucket(client: S3Client, bucket: string, retry: RetryPolicy, location: string): Promise<void> {
  try {
    await withRetry(`checking the bucket of ${location}`, retry, (signal) => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }));
  } catch (err) {
    if (err instanceof AppError && err.details?.httpStatus === 404) {
      throw new AppError('STORE_BUCKET_MISSING', `${location}: the bucket ${bucket} does not exist (NoSuchBucket, HTTP 404)`, { cause: err });
    }
    throw err;
  }
}

export type BucketObjectLock = 'compliance' | 'governance' | 'off';

/**
 * Creates `s3.bucket` (with Object Lock unless `off`; the lock mode itself is per object, so
 * compliance and governance create the same bucket). A bucket that already exists and is ours is
 * fine: the answer says whether we created it and its actual lock state, which the caller checks
 * (an existing bucket without Object Lock cannot get it on Ceph).
 */
export async function createBucket(s3: S3Config, objectLock: BucketObjectLock, retry: RetryPolicy = DEFAULT_RETRY): Promise<{ created: boolean; lock: BucketLock }> {
  const client = makeS3Client(s3, DEFAULT_TUNING);
  const location = `s3://${s3.bucket}`;
  try {
    let created = true;
    try {
      await withRetry(`creating the bucket ${location}`, retry, (signal) =>
        client.send(new CreateBucketCommand({ Bucket: s3.bucket, ...(objectLock === 'off' ? {} : { ObjectLockEnabledForBucket: true }) }), { abortSignal: signal }),
      );
    } catch (err) {
      const code = failureCode(err);
      if (code === 'BucketAlreadyOwnedByYou') created = false;
      else if (code === 'BucketAlreadyExists') {
        throw new AppError('STORE_ACCESS_DENIED', `${location}: the bucket name is taken by another account (BucketAlreadyExists)`, { cause: err });
      } else throw err;
    }
    const lock = await readBucketLock(client, s3.bucket, retry, location);
    return { created, lock };
  } catch (err) {
    throw storeError(`creating the bucket ${location}`, err);
  } finally {
    client.destroy();
  }
}
