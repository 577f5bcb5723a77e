/**
 * The writer lease of a remote repository (FORMAT.md §24) on the Ceph RGW lab, with short
 * intervals: a writer whose heartbeats cannot reach the store (the store answering 503 through
 * a proxy) for longer than its limit refuses its next upload, even once the store answers again;
 * two writers taking over a stale lease at the same moment: exactly one wins.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { AppError } from '../../backend/src/errors';
import { createBucket } from '../../backend/src/repository/store/s3Bucket';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { initRepoOnStore } from '../../backend/src/repository/store/open';
import { S3Store } from '../../backend/src/repository/store/s3Store';
import { WRITER_LEASE_KEY, WriterLease, type WriterLeaseRecord } from '../../backend/src/repository/store/writerLease';
import { expectCode } from '../helpers/expectCode';
import { CS, writePoint } from '../helpers/remotePoints';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';
import { storeProxy } from '../helpers/s3Proxy';

let lab: S3LabEnv;
let tmp: string;

async function newS3(name: string): Promise<S3Config> {
  const s3 = labS3Config(lab, uniqueBucket(name), await labCredentialsFile(lab, tmp), 'repo');
  await createBucket(s3, 'off');
  return s3;
}

const quick = { requireObjectLock: false, retry: { tries: 2, baseMs: 20, maxMs: 50 } };

beforeAll(async () => {
  lab = await s3Lab();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-writer-lease-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('writer lease (s3)', () => {
  test('heartbeats failing past the limit: the next upload refuses (lost the writer lease), even after the store is back', async () => {
    const s3 = await newS3('olvm-lease-cut');
    const proxy = await storeProxy(lab.endpoint);
    const store = new S3Store({ ...s3, endpoint: proxy.endpoint }, quick);
    const repo = await initRepoOnStore(store, path.join(tmp, 'cut-cache'), {
      chunkSize: CS,
      requireObjectLock: false,
      leaseTiming: { heartbeatMs: 200, staleMs: 4_000, lostAfterMs: 1_500 },
    });
    try {
      const image = randomBytes(4 * CS);
      const p1 = await writePoint(repo, image, null);
      // heartbeats keep it alive well past the limit while the store answers
      await new Promise((r) => setTimeout(r, 2_000));
      const p2 = await writePoint(repo, image, p1, []);
      const before = (await listKeys(store, 'points/')).length;
      expect(before).toBe(4);

      proxy.refuseNext(1_000_000);
      await new Promise((r) => setTimeout(r, 2_500));
      proxy.refuseNext(0);
      await new Promise((r) => setTimeout(r, 500));
      const err = await expectCode(writePoint(repo, randomBytes(4 * CS), p2, [0, 1, 2, 3]), 'STORE_WRITER_ACTIVE');
      expect(err.message).toContain('lost the writer lease');
      expect(await listKeys(store, 'points/')).toHaveLength(before);
    } finally {
      await repo.close().catch(() => undefined);
      await proxy.close();
    }
  });

  test('two writers taking over a stale lease at the same moment: exactly one wins', async () => {
    const s3 = await newS3('olvm-lease-race');
    const a = new S3Store(s3, quick);
    const b = new S3Store(s3, quick);
    try {
      for (let round = 0; round < 4; round++) {
        const old = new Date(Date.now() - 60_000).toISOString();
        const stale: WriterLeaseRecord = { holder: 'gone', host: 'elsewhere.example', pid: 1, startedAt: old, heartbeatAt: old, token: `stale-${round}` };
        await a.put(WRITER_LEASE_KEY, Buffer.from(JSON.stringify(stale) + '\n'));
        const timing = { heartbeatMs: 60_000, staleMs: 10_000, lostAfterMs: 30_000, settleMs: 500 };
        const got = await Promise.allSettled([WriterLease.acquire(a, 'writer-a', timing), WriterLease.acquire(b, 'writer-b', timing)]);
        const won = got.filter((g): g is PromiseFulfilledResult<WriterLease> => g.status === 'fulfilled');
        const lost = got.filter((g): g is PromiseRejectedResult => g.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect((lost[0]?.reason as AppError).code).toBe('STORE_WRITER_ACTIVE');
        const holder = (JSON.parse((await a.get(WRITER_LEASE_KEY)).toString()) as WriterLeaseRecord).holder;
        expect(holder).toBe(won[0]?.value.holder);
        await won[0]?.value.release();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

async function listKeys(store: S3Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}
