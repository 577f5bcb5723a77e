/**
 * What an operator checks about a repository on object storage without opening it: the
 * bucket's Object Lock (enabled, default retention) and the writer lease (who writes, last
 * heartbeat, whether it is stale). Read-only: a reader's credentials suffice where the store
 * lets them read the bucket's lock configuration; what cannot be read is reported, not thrown.
 */
import type { S3Settings } from '../../config';
import { describeError, isAppError } from '../../errors';
import type { BucketLock } from './objectStore';
import type { S3Config } from './s3Config';
import { openStore } from './stores';
import { STALE_MS, WRITER_LEASE_KEY, type WriterLeaseRecord } from './writerLease';

export interface RemoteStatus {
  location: string;
  /** The bucket's Object Lock, or why it could not be read. */
  objectLock: BucketLock | { error: string };
  /** The writer lease, null when nobody holds it; `stale`: its heartbeat is older than the lease allows. */
  writer: (Omit<WriterLeaseRecord, 'token'> & { stale: boolean }) | null | { error: string };
}

/** The service's repository.s3 (which names an absent optional field with `undefined`) as an
 *  S3Config, which leaves such fields out. */
export function s3ConfigOf(s: Omit<S3Settings, 'cacheDir'>): S3Config {
  return {
    ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
    bucket: s.bucket,
    prefix: s.prefix,
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    ...(s.caFile !== undefined ? { caFile: s.caFile } : {}),
    ...(s.credentialsFile !== undefined ? { credentialsFile: s.credentialsFile } : {}),
    ...(s.profile !== undefined ? { profile: s.profile } : {}),
  };
}

export async function remoteStatus(s3: S3Config): Promise<RemoteStatus> {
  const store = await openStore({ kind: 's3', s3, requireObjectLock: false });
  try {
    const objectLock = await store.bucketLock().catch((err: unknown) => ({ error: describeError(err) }));
    let writer: RemoteStatus['writer'];
    try {
      const rec = JSON.parse((await store.get(WRITER_LEASE_KEY)).toString('utf8')) as WriterLeaseRecord;
      // the lease's token stays with its holder
      writer = { holder: rec.holder, host: rec.host, pid: rec.pid, startedAt: rec.startedAt, heartbeatAt: rec.heartbeatAt, stale: Date.now() - Date.parse(rec.heartbeatAt) > STALE_MS };
    } catch (err) {
      writer = isAppError(err, 'STORE_NOT_FOUND') ? null : { error: describeError(err) };
    }
    return { location: store.location, objectLock, writer };
  } finally {
    await store.close();
  }
}
