/**
 * A real object store (the Ceph lab's) seen through a thin layer that counts the product's
 * retention calls and can make one manifest upload fail the way a network does: the request
 * reaches the store and its reply is lost, or it never reaches it. Everything else goes to the
 * real store unchanged.
 */
import { AppError } from '../../backend/src/errors';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { openStore } from '../../backend/src/repository/store/stores';
import type { S3Config } from '../../backend/src/repository/store/s3Config';

export interface StoreObservation {
  /** Keys the product called extendRetention on, in order. */
  retentionCalls: string[];
  /** The next put of a key ending in `/manifest.json`: 'lost-reply' (stored, then an error) or
   *  'unreachable' (an error, nothing stored). Cleared once used. */
  failNextManifest?: 'lost-reply' | 'unreachable';
}

export async function observedS3Store(s3: S3Config, opts: { bypassGovernance?: boolean } = {}): Promise<{ store: ObjectStore; seen: StoreObservation }> {
  const real = await openStore({ kind: 's3', s3, requireObjectLock: true, options: { bypassGovernance: opts.bypassGovernance === true } });
  const seen: StoreObservation = { retentionCalls: [] };
  const store = new Proxy(real, {
    get(target, prop, receiver): unknown {
      if (prop === 'extendRetention') {
        return (key: string, retention: Parameters<ObjectStore['extendRetention']>[1]) => {
          seen.retentionCalls.push(key);
          return target.extendRetention(key, retention);
        };
      }
      if (prop === 'put') {
        return async (...args: Parameters<ObjectStore['put']>) => {
          const fault = args[0].endsWith('/manifest.json') ? seen.failNextManifest : undefined;
          if (fault === undefined) return target.put(...args);
          delete seen.failNextManifest;
          if (fault === 'lost-reply') await target.put(...args);
          throw new AppError('STORE_UNAVAILABLE', `test: uploading ${args[0]}: the connection was reset (${fault})`);
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, seen };
}
