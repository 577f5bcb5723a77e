/**
 * What `olvm-backup setup` says about a repository on object storage (repository.s3 kept from the
 * existing config): where it is, the bucket's Object Lock and who holds the writer lease. Setup
 * does not create it there (the service does on its first start, or `olvm-backup repo init`);
 * a store it cannot reach is a warning, since the config itself is valid.
 */
import type { ServiceConfig } from '../config';
import { describeError } from '../errors';
import { remoteStatus, s3ConfigOf } from '../repository';
import type { SetupIo } from './types';

export async function reportStore(s3: NonNullable<ServiceConfig['repository']['s3']>, requireObjectLock: boolean, io: SetupIo): Promise<void> {
  const where = `s3://${s3.bucket}/${s3.prefix}`;
  io.say(`repository: on object storage ${where}${s3.endpoint !== undefined ? ` at ${s3.endpoint}` : ''} (cache ${s3.cacheDir})`);
  let st: Awaited<ReturnType<typeof remoteStatus>>;
  try {
    st = await remoteStatus(s3ConfigOf(s3));
  } catch (err) {
    io.say(`warning: cannot reach ${where}: ${describeError(err)}`);
    return;
  }
  const lock = st.objectLock;
  if ('error' in lock) io.say(`warning: Object Lock of ${where}: cannot read it: ${lock.error}`);
  else if (!lock.enabled) io.say(`${requireObjectLock ? 'warning: ' : ''}Object Lock: not enabled on bucket ${s3.bucket}${requireObjectLock ? ' — the service will refuse it (protection.requireObjectLock)' : ''}`);
  else io.say(`Object Lock: enabled${lock.defaultRetention ? `, default retention ${lock.defaultRetention.mode} ${lock.defaultRetention.days} days` : ''}`);
  const w = st.writer;
  if (w === null) io.say('writer lease: free');
  else if ('error' in w) io.say(`warning: writer lease: cannot read it: ${w.error}`);
  else io.say(`writer lease: ${w.holder} on ${w.host} (pid ${w.pid}) since ${w.startedAt}, last heartbeat ${w.heartbeatAt}${w.stale ? ' (stale)' : ''}`);
}
