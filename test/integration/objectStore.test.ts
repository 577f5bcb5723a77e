import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DirStore, TMP_MARK } from '../../backend/src/repository/store/dirStore';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { createBucket } from '../../backend/src/repository/store/s3Bucket';
import { openStore } from '../../backend/src/repository/store/stores';
import { expectCode } from '../helpers/expectCode';
import { labS3Config, uniqueBucket } from '../helpers/s3Lab';
import { keysOf, MiB, sha, storeWorkspace } from '../helpers/storeWorkspace';

/**
 * The ObjectStore contract, once over a directory and once over a real Ceph RGW (the project's
 * lab): same calls, same answers. What only S3 has (Object Lock, bad conditions) is in
 * objectStoreS3.test.ts.
 */

jest.setTimeout(120_000);

const ws = storeWorkspace('olvm-objstore-');

describe.each(['dir', 's3'] as const)('ObjectStore contract on %s', (kind) => {
  let store: ObjectStore;

  beforeAll(async () => {
    if (kind === 'dir') {
      store = await openStore({ kind: 'dir', dir: path.join(ws.work, 'dirstore') });
    } else {
      const cfg = labS3Config(ws.lab, uniqueBucket('contract'), ws.creds, 'repos/one');
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
    expect(await store.download('empty', path.join(ws.work, `empty-${kind}`))).toBe(0);
    expect((await fs.readFile(path.join(ws.work, `empty-${kind}`))).length).toBe(0);
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
    const { file, data } = await ws.bigFile(`big-${kind}`, 20 * MiB + 12345);
    expect(await store.put('packs/cd/big', { file })).toMatchObject({ created: true });
    expect((await store.head('packs/cd/big'))?.size).toBe(data.length);
    expect(sha(await store.get('packs/cd/big'))).toBe(sha(data));
    expect((await store.getRange('packs/cd/big', 8 * MiB - 10, 20)).equals(data.subarray(8 * MiB - 10, 8 * MiB + 10))).toBe(true);
    const out = path.join(ws.work, `down-${kind}`);
    await fs.writeFile(out, 'old content');
    expect(await store.download('packs/cd/big', out)).toBe(data.length);
    expect(sha(await fs.readFile(out))).toBe(sha(data));
    // no temp file left next to it
    expect((await fs.readdir(ws.work)).filter((n) => n.includes(`down-${kind}`))).toEqual([`down-${kind}`]);
    await expectCode(store.download('packs/cd/none', path.join(ws.work, 'none')), 'STORE_NOT_FOUND');
  });

  it('reports retention support through bucketLock', async () => {
    expect(await store.bucketLock()).toEqual({ enabled: false });
    if (kind === 'dir') {
      await expectCode(store.put('locked', Buffer.from('x'), { retention: { mode: 'compliance', until: new Date(Date.now() + 60_000) } }), 'STORE_NO_OBJECT_LOCK');
      expect(await new DirStore(path.join(ws.work, 'dirstore'), { ignoreRetention: true }).put('locked', Buffer.from('x'), { retention: { mode: 'compliance', until: new Date() } })).toEqual({ created: true });
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
    const root = path.join(ws.work, 'dir-leftovers');
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
