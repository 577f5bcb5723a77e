import { DeleteObjectCommand, GetObjectRetentionCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import { DirStore, TMP_MARK } from '../../backend/src/repository/store/dirStore';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { createBucket } from '../../backend/src/repository/store/s3Bucket';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { S3Store, type S3StoreOptions } from '../../backend/src/repository/store/s3Store';
import { openStore } from '../../backend/src/repository/store/stores';
import { expectCode } from '../helpers/expectCode';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';
import { storeProxy } from '../helpers/s3Proxy';

/**
 * The ObjectStore contract, once over a directory and once over a real Ceph RGW (the project's
 * lab): same calls, same answers. Then what only S3 has: Object Lock (compliance, governance,
 * retention that never shortens, retention on multipart uploads), and the bad conditions the
 * store must turn into clear STORE_* errors with the store's own words.
 */

jest.setTimeout(120_000);

const MiB = 1 << 20;
let work: string;
let lab: S3LabEnv;
let creds: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-objstore-'));
  lab = await s3Lab();
  creds = await labCredentialsFile(lab, work);
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

function rawClient(): S3Client {
  return new S3Client({
    endpoint: lab.endpoint,
    region: lab.region,
    forcePathStyle: true,
    credentials: { accessKeyId: lab.accessKeyId, secretAccessKey: lab.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function bigFile(name: string, size: number): Promise<{ file: string; data: Buffer }> {
  const data = randomBytes(size);
  const file = path.join(work, name);
  await fs.writeFile(file, data);
  return { file, data };
}

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.each(['dir', 's3'] as const)('ObjectStore contract on %s', (kind) => {
  let store: ObjectStore;

  beforeAll(async () => {
    if (kind === 'dir') {
      store = await openStore({ kind: 'dir', dir: path.join(work, 'dirstore') });
    } else {
      const cfg = labS3Config(lab, uniqueBucket('contract'), creds, 'repos/one');
      expect((await createBucket(cfg, 'off')).created).toBe(true);
      // a page of 7 keys: the 30-key listing below crosses several continuation tokens
      store = await openStore({ kind: 's3', s3: cfg, requireObjectLock: false, options: { listPageSize: 7 } });
    }
  });

  afterAll(async () => {
    await store.close();
  });

  it('puts, gets and heads whole objects; a missing one is STORE_NOT_FOUND or null', async () => {
    const body = randomBytes(5000);
    expect(await store.put('config.json', body)).toMatchObject({ created: true });
    expect((await store.get('config.json')).equals(body)).toBe(true);
    const info = await store.head('config.json');
    expect(info).toMatchObject({ key: 'config.json', size: 5000 });
    expect(info?.modified.getTime()).toBeGreaterThan(Date.now() - 600_000);
    // overwrite without ifAbsent replaces
    const other = randomBytes(10);
    await store.put('config.json', other);
    expect((await store.get('config.json')).equals(other)).toBe(true);
    expect(await store.head('nope/missing')).toBeNull();
    const err = await expectCode(store.get('nope/missing'), 'STORE_NOT_FOUND');
    expect(err.message).toContain('nope/missing');
    // an empty object is an object
    await store.put('empty', Buffer.alloc(0));
    expect((await store.get('empty')).length).toBe(0);
    expect((await store.getRange('empty', 0, 10)).length).toBe(0);
    expect(await store.download('empty', path.join(work, `empty-${kind}`))).toBe(0);
    expect((await fs.readFile(path.join(work, `empty-${kind}`))).length).toBe(0);
    await expectCode(store.put('../escape', body), 'INVALID_ARGUMENT');
    await expectCode(store.get('/abs'), 'INVALID_ARGUMENT');
  });

  it('reads ranges, shorter at the end and empty past it', async () => {
    const body = randomBytes(1000);
    await store.put('packs/ab/range', body);
    expect((await store.getRange('packs/ab/range', 100, 50)).equals(body.subarray(100, 150))).toBe(true);
    expect((await store.getRange('packs/ab/range', 0, 1000)).equals(body)).toBe(true);
    expect((await store.getRange('packs/ab/range', 990, 100)).equals(body.subarray(990))).toBe(true);
    expect((await store.getRange('packs/ab/range', 1000, 10)).length).toBe(0);
    expect((await store.getRange('packs/ab/range', 5000, 10)).length).toBe(0);
    expect((await store.getRange('packs/ab/range', 10, 0)).length).toBe(0);
    await expectCode(store.getRange('packs/ab/none', 0, 10), 'STORE_NOT_FOUND');
    await expectCode(store.getRange('packs/ab/none', 0, 0), 'STORE_NOT_FOUND');
  });

  it('lists in key (byte) order across pages, by prefix', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 26; i++) keys.push(`list/k${String.fromCharCode(97 + ((i * 7) % 26))}/${i % 3}`);
    keys.push('list/a-c', 'list/a/b', 'list/a.x', 'list/A');
    await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(await keysOf(store, 'list/')).toEqual(sorted);
    expect(await keysOf(store, 'list/a')).toEqual(['list/a-c', 'list/a.x', 'list/a/b']);
    expect(await keysOf(store, 'list/kb/')).toEqual(sorted.filter((k) => k.startsWith('list/kb/')));
    expect(await keysOf(store, 'nothing/')).toEqual([]);
    const sizes: number[] = [];
    for await (const o of store.list('list/a/')) sizes.push(o.size);
    expect(sizes).toEqual([Buffer.byteLength('list/a/b')]);
  });

  it('creates only if absent', async () => {
    expect(await store.put('writer.json', Buffer.from('first'), { ifAbsent: true })).toMatchObject({ created: true });
    expect(await store.put('writer.json', Buffer.from('second'), { ifAbsent: true })).toEqual({ created: false });
    expect((await store.get('writer.json')).toString()).toBe('first');
  });

  it('racing creators: never two winners, and the winner’s bytes are what stays', async () => {
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => store.put('race.json', Buffer.from(`writer ${i}`), { ifAbsent: true })));
    const winners = results.flatMap((r, i) => (r.created ? [i] : []));
    expect(winners.length).toBeLessThanOrEqual(1);
    if (winners.length === 1) expect((await store.get('race.json')).toString()).toBe(`writer ${winners[0]}`);
  });

  it('deletes: deleted, then absent; gone from listings', async () => {
    await store.put('trash/x', Buffer.from('1'));
    await store.put('trash/x', Buffer.from('2'));
    expect(await store.delete('trash/x')).toEqual({ state: 'deleted' });
    expect(await store.head('trash/x')).toBeNull();
    expect(await keysOf(store, 'trash/')).toEqual([]);
    expect(await store.delete('trash/x')).toEqual({ state: 'absent' });
    expect(await store.delete('trash/never')).toEqual({ state: 'absent' });
  });

  it('uploads a 20 MiB file (multipart on s3) and downloads it byte-exact', async () => {
    const { file, data } = await bigFile(`big-${kind}`, 20 * MiB + 12345);
    expect(await store.put('packs/cd/big', { file })).toMatchObject({ created: true });
    expect((await store.head('packs/cd/big'))?.size).toBe(data.length);
    expect(sha(await store.get('packs/cd/big'))).toBe(sha(data));
    expect((await store.getRange('packs/cd/big', 8 * MiB - 10, 20)).equals(data.subarray(8 * MiB - 10, 8 * MiB + 10))).toBe(true);
    const out = path.join(work, `down-${kind}`);
    await fs.writeFile(out, 'old content');
    expect(await store.download('packs/cd/big', out)).toBe(data.length);
    expect(sha(await fs.readFile(out))).toBe(sha(data));
    // no temp file left next to it
    expect((await fs.readdir(work)).filter((n) => n.includes(`down-${kind}`))).toEqual([`down-${kind}`]);
    await expectCode(store.download('packs/cd/none', path.join(work, 'none')), 'STORE_NOT_FOUND');
  });

  it('reports retention support through bucketLock', async () => {
    expect(await store.bucketLock()).toEqual({ enabled: false });
    if (kind === 'dir') {
      await expectCode(store.put('locked', Buffer.from('x'), { retention: { mode: 'compliance', until: new Date(Date.now() + 60_000) } }), 'STORE_NO_OBJECT_LOCK');
      expect(await new DirStore(path.join(work, 'dirstore'), { ignoreRetention: true }).put('locked', Buffer.from('x'), { retention: { mode: 'compliance', until: new Date() } })).toEqual({ created: true });
    } else {
      // opened with requireObjectLock false: retention is dropped on a bucket without Object Lock
      await store.put('locked', Buffer.from('x'), { retention: { mode: 'compliance', until: new Date(Date.now() + 60_000) } });
      expect((await store.head('locked'))?.retention).toBeUndefined();
      expect(await store.delete('locked')).toEqual({ state: 'deleted' });
    }
  });
});

describe('DirStore leftovers', () => {
  it('never lists a crashed writer’s temp file, and abortStaleUploads removes the old ones', async () => {
    const root = path.join(work, 'dir-leftovers');
    const store = new DirStore(root);
    await store.put('packs/ab/done', Buffer.from('done'));
    const stale = path.join(root, 'packs/ab', `.crashed${TMP_MARK}1-aaaa`);
    const fresh = path.join(root, 'packs/ab', `.running${TMP_MARK}2-bbbb`);
    await fs.writeFile(stale, 'half');
    await fs.writeFile(fresh, 'half');
    const old = new Date(Date.now() - 2 * 3600_000);
    await fs.utimes(stale, old, old);
    expect(await keysOf(store, '')).toEqual(['packs/ab/done']);
    expect(await store.abortStaleUploads(new Date(Date.now() - 3600_000))).toBe(1);
    expect((await fs.readdir(path.join(root, 'packs/ab'))).sort()).toEqual([path.basename(fresh), 'done'].sort());
  });
});

describe('S3 Object Lock', () => {
  let cfg: S3Config;
  let store: ObjectStore;
  const raw = (): S3Client => rawClient();
  const soon = (ms: number): Date => new Date(Date.now() + ms);

  beforeAll(async () => {
    cfg = labS3Config(lab, uniqueBucket('lock'), creds, 'r');
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
    const plain = labS3Config(lab, uniqueBucket('nolock'), creds);
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
    const { file, data } = await bigFile('locked-big', 18 * MiB);
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
    await createBucket(labS3Config(lab, bucket, creds), 'off');
  });

  it('a wrong secret is STORE_ACCESS_DENIED with the store’s words', async () => {
    const wrong = await labCredentialsFile(lab, work, { secret: 'not-the-secret' });
    const store = new S3Store(labS3Config(lab, bucket, wrong), fast);
    try {
      const err = await expectCode(store.put('k', Buffer.from('x')), 'STORE_ACCESS_DENIED');
      expect(err.message).toContain('SignatureDoesNotMatch');
      await expectCode(openStore({ kind: 's3', s3: labS3Config(lab, bucket, wrong), requireObjectLock: false }), 'STORE_ACCESS_DENIED');
    } finally {
      await store.close();
    }
  });

  it('credentials come from the environment when no file is named', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = lab.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = lab.secretAccessKey;
    const cfg = { ...labS3Config(lab, bucket, ''), credentialsFile: undefined };
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
    const cfg = labS3Config(lab, uniqueBucket('missing'), creds);
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
    const cfg = { ...labS3Config(lab, bucket, creds), endpoint: 'http://127.0.0.1:9' };
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
    const proxy = await storeProxy(lab.endpoint, { refuseFirst: 2 });
    const store = new S3Store({ ...labS3Config(lab, bucket, creds), endpoint: proxy.endpoint }, { ...fast, retry: { tries: 4, baseMs: 20, maxMs: 100 } });
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
    const key = path.join(work, 'tls.key');
    const cert = path.join(work, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=olvm test CA', '-addext', 'subjectAltName=IP:127.0.0.1'], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    const proxy = await storeProxy(lab.endpoint, { tls: { key: await fs.readFile(key), cert: await fs.readFile(cert) } });
    const trusted = new S3Store({ ...labS3Config(lab, bucket, creds), endpoint: proxy.endpoint, caFile: cert }, fast);
    const untrusted = new S3Store({ ...labS3Config(lab, bucket, creds), endpoint: proxy.endpoint }, fast);
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
    await expectCode(Promise.resolve().then(() => new S3Store({ ...labS3Config(lab, bucket, creds), caFile: path.join(work, 'no-ca.pem') })), 'CONFIG_INVALID');
  });

  it('a corrupt upload (wrong Content-MD5) is STORE_CORRUPT, single and multipart', async () => {
    const wrongMd5 = (): string => createHash('md5').update('something else').digest('base64');
    const store = new S3Store(labS3Config(lab, bucket, creds), { ...fast, testHooks: { contentMd5: wrongMd5 } });
    try {
      expect((await expectCode(store.put('corrupt', randomBytes(100)), 'STORE_CORRUPT')).message).toContain('BadDigest');
      const { file } = await bigFile('corrupt-big', 17 * MiB);
      await expectCode(store.put('corrupt-big', { file }), 'STORE_CORRUPT');
      expect(await store.head('corrupt')).toBeNull();
      expect(await store.head('corrupt-big')).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('a multipart upload cut mid-way is aborted; one left by a crash is removed by abortStaleUploads', async () => {
    const { file } = await bigFile('cut-big', 40 * MiB);
    const cut = (n: number): void => {
      if (n === 2) throw Object.assign(new Error('socket hang up (test: network cut after part 2)'), { code: 'ECONNRESET' });
    };
    const uploads = async (): Promise<number> => {
      const client = rawClient();
      try {
        return ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length;
      } finally {
        client.destroy();
      }
    };
    const cutting = new S3Store(labS3Config(lab, bucket, creds), { ...fast, inFlight: 1, testHooks: { afterPart: cut } });
    const crashing = new S3Store(labS3Config(lab, bucket, creds), { ...fast, inFlight: 1, testHooks: { afterPart: cut, skipAbortOnFailure: true } });
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
    const { file } = await bigFile('netcut-big', 40 * MiB);
    // the first two parts go through; every later part's body is cut after 1 MiB, on every try
    const proxy = await storeProxy(lab.endpoint, { cutBodies: { afterBytes: MiB, skip: 2 } });
    const store = new S3Store({ ...labS3Config(lab, bucket, creds), endpoint: proxy.endpoint }, { ...fast, inFlight: 2 });
    const client = rawClient();
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
    const store = new S3Store(labS3Config(lab, bucket, creds), { ...fast, tuning: { systemClockOffsetMs: -3600_000 } });
    try {
      const err = await expectCode(store.put('skew', Buffer.from('x')), 'STORE_CLOCK_SKEW');
      expect(err.message).toContain('RequestTimeTooSkewed');
      expect(err).toBeInstanceOf(AppError);
    } finally {
      await store.close();
    }
  });
});
