import { DeleteObjectCommand, GetObjectRetentionCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { createBucket } from '../../backend/src/repository/store/s3Bucket';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { S3Store, type S3StoreOptions } from '../../backend/src/repository/store/s3Store';
import { openStore } from '../../backend/src/repository/store/stores';
import { expectCode } from '../helpers/expectCode';
import { labCredentialsFile, labS3Config, uniqueBucket } from '../helpers/s3Lab';
import { storeProxy } from '../helpers/s3Proxy';
import { MiB, sha, storeWorkspace } from '../helpers/storeWorkspace';

/**
 * What only the S3 store has, on a real Ceph RGW (the project's lab): Object Lock (compliance,
 * governance, retention that never shortens, retention on multipart uploads), and the bad
 * conditions the store must turn into clear STORE_* errors with the store's own words. The
 * contract both stores share is objectStore.test.ts.
 */

jest.setTimeout(120_000);

const ws = storeWorkspace('olvm-objstore-s3-');

describe('S3 Object Lock', () => {
  let cfg: S3Config;
  let store: ObjectStore;
  const raw = (): S3Client => ws.rawClient();
  const soon = (ms: number): Date => new Date(Date.now() + ms);

  beforeAll(async () => {
    cfg = labS3Config(ws.lab, uniqueBucket('lock'), ws.creds, 'r');
    const made = await createBucket(cfg, 'compliance');
    expect(made).toEqual({ created: true, lock: { enabled: true } });
    // idempotent: the bucket is ours already
    expect((await createBucket(cfg, 'compliance')).lock.enabled).toBe(true);
    store = await openStore({ kind: 's3', s3: cfg });
  });

  afterAll(async () => {
    await store.close();
  });

  it('refuses to open a bucket without Object Lock when it is required', async () => {
    const plain = labS3Config(ws.lab, uniqueBucket('nolock'), ws.creds);
    await createBucket(plain, 'off');
    const err = await expectCode(openStore({ kind: 's3', s3: plain }), 'STORE_NO_OBJECT_LOCK');
    expect(err.message).toContain(plain.bucket);
  });

  it('compliance: neither the store nor a raw DeleteObject removes the version before its date; after it, delete works', async () => {
    const until = soon(3000);
    const put = await store.put('points/vm/p1/manifest.json', Buffer.from('manifest'), { retention: { mode: 'compliance', until } });
    expect(put.versionId).toBeTruthy();
    const info = await store.head('points/vm/p1/manifest.json');
    expect(info?.retention?.mode).toBe('compliance');
    expect(Math.abs((info?.retention?.until.getTime() ?? 0) - until.getTime())).toBeLessThan(1000);
    const refused = await store.delete('points/vm/p1/manifest.json');
    expect(refused.state).toBe('locked');
    expect(refused.state === 'locked' && refused.until && Math.abs(refused.until.getTime() - until.getTime()) < 1000).toBe(true);
    const client = raw();
    try {
      const e = await client.send(new DeleteObjectCommand({ Bucket: cfg.bucket, Key: 'r/points/vm/p1/manifest.json', VersionId: put.versionId, BypassGovernanceRetention: true })).then(
        () => null,
        (err: Error) => err,
      );
      expect(e?.name).toBe('AccessDenied');
    } finally {
      client.destroy();
    }
    expect((await store.get('points/vm/p1/manifest.json')).toString()).toBe('manifest');
    await new Promise((r) => setTimeout(r, Math.max(0, until.getTime() - Date.now()) + 1500));
    expect(await store.delete('points/vm/p1/manifest.json')).toEqual({ state: 'deleted' });
    expect(await store.head('points/vm/p1/manifest.json')).toBeNull();
  });

  it('governance: refused without bypass, deleted by a store opened with bypassGovernance', async () => {
    await store.put('g/obj', Buffer.from('g'), { retention: { mode: 'governance', until: soon(3600_000) } });
    expect((await store.delete('g/obj')).state).toBe('locked');
    const operator = await openStore({ kind: 's3', s3: cfg, options: { bypassGovernance: true } });
    try {
      expect(await operator.delete('g/obj')).toEqual({ state: 'deleted' });
    } finally {
      await operator.close();
    }
  });

  it('extendRetention lengthens and never shortens', async () => {
    await store.put('x/pack', Buffer.from('pack'), { retention: { mode: 'compliance', until: soon(5000) } });
    const later = soon(20_000);
    await store.extendRetention('x/pack', { mode: 'compliance', until: later });
    expect(Math.abs(((await store.head('x/pack'))?.retention?.until.getTime() ?? 0) - later.getTime())).toBeLessThan(1000);
    await store.extendRetention('x/pack', { mode: 'compliance', until: soon(2000) });
    expect(Math.abs(((await store.head('x/pack'))?.retention?.until.getTime() ?? 0) - later.getTime())).toBeLessThan(1000);
    await expectCode(store.extendRetention('x/none', { mode: 'compliance', until: later }), 'STORE_NOT_FOUND');
    // an object without retention gets one
    await store.put('x/plain', Buffer.from('p'));
    await store.extendRetention('x/plain', { mode: 'governance', until: later });
    expect((await store.head('x/plain'))?.retention?.mode).toBe('governance');
  });

  it('a multipart upload gets its retention (applied after Complete: Ceph 16 ignores it on Create)', async () => {
    const { file, data } = await ws.bigFile('locked-big', 18 * MiB);
    const until = soon(8000);
    const put = await store.put('packs/ef/locked', { file }, { retention: { mode: 'compliance', until } });
    const client = raw();
    try {
      const ret = await client.send(new GetObjectRetentionCommand({ Bucket: cfg.bucket, Key: 'r/packs/ef/locked', VersionId: put.versionId }));
      expect(ret.Retention?.Mode).toBe('COMPLIANCE');
      expect(Math.abs(new Date(ret.Retention?.RetainUntilDate ?? 0).getTime() - until.getTime())).toBeLessThan(1000);
      const head = await client.send(new HeadObjectCommand({ Bucket: cfg.bucket, Key: 'r/packs/ef/locked' }));
      expect(head.ObjectLockMode).toBe('COMPLIANCE');
      expect(head.ContentLength).toBe(data.length);
    } finally {
      client.destroy();
    }
    expect((await store.delete('packs/ef/locked')).state).toBe('locked');
    expect(sha(await store.get('packs/ef/locked'))).toBe(sha(data));
  });

  it('ifAbsent on a versioned bucket (If-None-Match is ignored there by Ceph 16) leaves the first version alone', async () => {
    expect((await store.put('writer.json', Buffer.from('one'), { ifAbsent: true })).created).toBe(true);
    expect(await store.put('writer.json', Buffer.from('two'), { ifAbsent: true })).toEqual({ created: false });
    expect((await store.get('writer.json')).toString()).toBe('one');
    const client = raw();
    try {
      const v = await client.send(new ListObjectVersionsCommand({ Bucket: cfg.bucket, Prefix: 'r/writer.json' }));
      expect((v.Versions ?? []).length).toBe(1);
    } finally {
      client.destroy();
    }
    expect(await store.delete('writer.json')).toEqual({ state: 'deleted' });
    expect((await store.put('writer.json', Buffer.from('three'), { ifAbsent: true })).created).toBe(true);
    // racing creators on a versioned bucket: at most one wins, and its bytes stay
    const results = await Promise.all([0, 1, 2, 3].map((i) => store.put('race.json', Buffer.from(`writer ${i}`), { ifAbsent: true })));
    const winners = results.flatMap((r, i) => (r.created ? [i] : []));
    expect(winners.length).toBeLessThanOrEqual(1);
    if (winners.length === 1) expect((await store.get('race.json')).toString()).toBe(`writer ${winners[0]}`);
  });
});

describe('S3 bad conditions', () => {
  let bucket: string;
  const fast: S3StoreOptions = { requireObjectLock: false, retry: { tries: 3, baseMs: 20, maxMs: 100 } };

  beforeAll(async () => {
    bucket = uniqueBucket('bad');
    await createBucket(labS3Config(ws.lab, bucket, ws.creds), 'off');
  });

  it('a wrong secret is STORE_ACCESS_DENIED with the store’s words', async () => {
    const wrong = await labCredentialsFile(ws.lab, ws.work, { secret: 'not-the-secret' });
    const store = new S3Store(labS3Config(ws.lab, bucket, wrong), fast);
    try {
      const err = await expectCode(store.put('k', Buffer.from('x')), 'STORE_ACCESS_DENIED');
      expect(err.message).toContain('SignatureDoesNotMatch');
      await expectCode(openStore({ kind: 's3', s3: labS3Config(ws.lab, bucket, wrong), requireObjectLock: false }), 'STORE_ACCESS_DENIED');
    } finally {
      await store.close();
    }
  });

  it('credentials come from the environment when no file is named', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = ws.lab.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = ws.lab.secretAccessKey;
    const cfg = { ...labS3Config(ws.lab, bucket, ''), credentialsFile: undefined };
    const store = new S3Store(cfg, fast);
    try {
      await store.put('env', Buffer.from('env'));
      expect((await store.get('env')).toString()).toBe('env');
    } finally {
      await store.close();
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('a missing bucket is STORE_BUCKET_MISSING', async () => {
    const cfg = labS3Config(ws.lab, uniqueBucket('missing'), ws.creds);
    const err = await expectCode(openStore({ kind: 's3', s3: cfg, requireObjectLock: false }), 'STORE_BUCKET_MISSING');
    expect(err.message).toContain(cfg.bucket);
    const store = new S3Store(cfg, fast);
    try {
      expect((await expectCode(store.get('k'), 'STORE_BUCKET_MISSING')).message).toContain('NoSuchBucket');
      await expectCode(store.head('k'), 'STORE_BUCKET_MISSING');
    } finally {
      await store.close();
    }
  });

  it('an unreachable endpoint is STORE_UNAVAILABLE after the bounded retries', async () => {
    const cfg = { ...labS3Config(ws.lab, bucket, ws.creds), endpoint: 'http://127.0.0.1:9' };
    const store = new S3Store(cfg, { ...fast, tuning: { connectTimeoutMs: 2000 } });
    const t0 = Date.now();
    try {
      const err = await expectCode(store.get('k'), 'STORE_UNAVAILABLE');
      expect(err.message).toMatch(/after 3 tries, last: .*ECONNREFUSED/);
    } finally {
      await store.close();
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('503 SlowDown is retried with backoff, and reported with the store’s words when it persists', async () => {
    const proxy = await storeProxy(ws.lab.endpoint, { refuseFirst: 2 });
    const store = new S3Store({ ...labS3Config(ws.lab, bucket, ws.creds), endpoint: proxy.endpoint }, { ...fast, retry: { tries: 4, baseMs: 20, maxMs: 100 } });
    try {
      await store.put('slow', Buffer.from('eventually'));
      expect(proxy.refused()).toBe(2);
      expect((await store.get('slow')).toString()).toBe('eventually');
      proxy.refuseNext(10);
      const err = await expectCode(store.get('slow'), 'STORE_UNAVAILABLE');
      expect(err.message).toContain('after 4 tries, last: SlowDown: Please reduce your request rate. (HTTP 503)');
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('an HTTPS endpoint signed by a private CA works with caFile, and is refused without it', async () => {
    const key = path.join(ws.work, 'tls.key');
    const cert = path.join(ws.work, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=olvm test CA', '-addext', 'subjectAltName=IP:127.0.0.1'], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    const proxy = await storeProxy(ws.lab.endpoint, { tls: { key: await fs.readFile(key), cert: await fs.readFile(cert) } });
    const trusted = new S3Store({ ...labS3Config(ws.lab, bucket, ws.creds), endpoint: proxy.endpoint, caFile: cert }, fast);
    const untrusted = new S3Store({ ...labS3Config(ws.lab, bucket, ws.creds), endpoint: proxy.endpoint }, fast);
    try {
      await trusted.put('tls', Buffer.from('over tls'));
      expect((await trusted.get('tls')).toString()).toBe('over tls');
      const err = await expectCode(untrusted.get('tls'), 'STORE_UNAVAILABLE');
      expect(err.message).toMatch(/self[- ]signed certificate/i);
    } finally {
      await trusted.close();
      await untrusted.close();
      await proxy.close();
    }
    await expectCode(Promise.resolve().then(() => new S3Store({ ...labS3Config(ws.lab, bucket, ws.creds), caFile: path.join(ws.work, 'no-ca.pem') })), 'CONFIG_INVALID');
  });

  it('a corrupt upload (wrong Content-MD5) is STORE_CORRUPT, single and multipart', async () => {
    const wrongMd5 = (): string => createHash('md5').update('something else').digest('base64');
    const store = new S3Store(labS3Config(ws.lab, bucket, ws.creds), { ...fast, testHooks: { contentMd5: wrongMd5 } });
    try {
      expect((await expectCode(store.put('corrupt', randomBytes(100)), 'STORE_CORRUPT')).message).toContain('BadDigest');
      const { file } = await ws.bigFile('corrupt-big', 17 * MiB);
      await expectCode(store.put('corrupt-big', { file }), 'STORE_CORRUPT');
      expect(await store.head('corrupt')).toBeNull();
      expect(await store.head('corrupt-big')).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('a multipart upload cut mid-way is aborted; one left by a crash is removed by abortStaleUploads', async () => {
    const { file } = await ws.bigFile('cut-big', 40 * MiB);
    const cut = (n: number): void => {
      if (n === 2) throw Object.assign(new Error('socket hang up (test: network cut after part 2)'), { code: 'ECONNRESET' });
    };
    const uploads = async (): Promise<number> => {
      const client = ws.rawClient();
      try {
        return ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length;
      } finally {
        client.destroy();
      }
    };
    const cutting = new S3Store(labS3Config(ws.lab, bucket, ws.creds), { ...fast, inFlight: 1, testHooks: { afterPart: cut } });
    const crashing = new S3Store(labS3Config(ws.lab, bucket, ws.creds), { ...fast, inFlight: 1, testHooks: { afterPart: cut, skipAbortOnFailure: true } });
    try {
      await expect(cutting.put('packs/cut', { file })).rejects.toThrow('network cut after part 2');
      expect(await uploads()).toBe(0);
      await expect(crashing.put('packs/crash', { file })).rejects.toThrow('network cut after part 2');
      expect(await uploads()).toBe(1);
      expect(await crashing.abortStaleUploads(new Date(Date.now() - 3600_000))).toBe(0);
      expect(await crashing.abortStaleUploads(new Date(Date.now() + 60_000))).toBe(1);
      expect(await uploads()).toBe(0);
      expect(await crashing.head('packs/crash')).toBeNull();
    } finally {
      await cutting.close();
      await crashing.close();
    }
  });

  it('a network cut in the middle of a multipart upload: retried, then aborted, no parts left behind', async () => {
    const { file } = await ws.bigFile('netcut-big', 40 * MiB);
    // the first two parts go through; every later part's body is cut after 1 MiB, on every try
    const proxy = await storeProxy(ws.lab.endpoint, { cutBodies: { afterBytes: MiB, skip: 2 } });
    const store = new S3Store({ ...labS3Config(ws.lab, bucket, ws.creds), endpoint: proxy.endpoint }, { ...fast, inFlight: 2 });
    const client = ws.rawClient();
    try {
      const err = await expectCode(store.put('packs/netcut', { file }), 'STORE_UNAVAILABLE');
      expect(err.message).toMatch(/\(part \d\): the store still failed after 3 tries, last: /);
      expect(proxy.cut()).toBeGreaterThanOrEqual(3);
      expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'packs/netcut' }))).Uploads ?? []).toEqual([]);
      expect(await store.head('packs/netcut')).toBeNull();
    } finally {
      client.destroy();
      await store.close();
      await proxy.close();
    }
  });

  it('a clock an hour off is STORE_CLOCK_SKEW (RGW allows 15 minutes)', async () => {
    const store = new S3Store(labS3Config(ws.lab, bucket, ws.creds), { ...fast, tuning: { systemClockOffsetMs: -3600_000 } });
    try {
      const err = await expectCode(store.put('skew', Buffer.from('x')), 'STORE_CLOCK_SKEW');
      expect(err.message).toContain('RequestTimeTooSkewed');
      expect(err).toBeInstanceOf(AppError);
    } finally {
      await store.close();
    }
  });
});
