/**
 * A repository on an object store (FORMAT.md §24), on every remote backend (a directory store,
 * and S3 on the Ceph RGW lab): points byte-exact from the writer and from a reader with a fresh
 * cache, encryption, verify, gc with the store following, the writer lease, a reader that never
 * writes, deletion visible to readers, a reader restoring while the writer backs up.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addKey, newPointId, type Repository } from '../../backend/src/repository';
import { expectCode } from '../helpers/expectCode';
import { readImage } from '../helpers/leasedRead';
import { remoteBackends } from '../helpers/repoBackends';
import { cachePackSizes, changedImage, CS, storeKeys, storeObjects, VM, writePoint } from '../helpers/remotePoints';
import { TEST_PASSPHRASE } from '../helpers/repoFormats';

const KiB = 1024;
const ENCRYPTED = { encryption: 'aes-256-gcm' as const, passphrase: TEST_PASSPHRASE, scrypt: { N: 1024, r: 8, p: 1 } };

describe.each(remoteBackends())('remote repository ($name)', (backend) => {
  let tmp: string;
  const open: Repository[] = [];
  const track = (r: Repository): Repository => {
    open.push(r);
    return r;
  };

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), `olvm-remote-${backend.name}-`));
  });
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close().catch(() => undefined);
  });
  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  test.each([
    ['plain', {}],
    ['encrypted', ENCRYPTED],
  ] as const)('%s: points byte-exact from the writer and from a fresh reader; the cache holds metadata only; verify and gc follow the store', async (_kind, enc) => {
    const dir = path.join(tmp, `repo-${_kind}`);
    const writer = track(await backend.init(dir, { chunkSize: CS, packSize: 1 << 20, workers: 2, ...enc }));
    expect(writer.remote).toEqual({ location: expect.any(String), mode: 'writer' });
    const image = randomBytes(24 * CS);
    image.fill(0, 4 * CS, 6 * CS);
    const p1 = await writePoint(writer, image, null);
    const image2 = changedImage(image, [1, 9, 17]);
    // keepPacks false (the default): once uploaded, a pack is an empty placeholder in the cache
    const cached = await cachePackSizes(dir);
    expect(cached.length).toBeGreaterThan(0);
    expect(cached.every((n) => n === 0)).toBe(true);
    const p2 = await writePoint(writer, image2, p1, [1, 9, 17]);
    expect((await readImage(writer, p1.pointId, 'vda')).equals(image)).toBe(true);
    expect((await readImage(writer, p2.pointId, 'vda')).equals(image2)).toBe(true);

    // the store has the same relative keys as the cache: config, index, packs, points
    const keys = await storeKeys(backend, dir, '');
    expect(keys).toContain('config.json');
    expect(keys).toContain(`points/${p2.pointId}/manifest.json`);
    expect(keys).toContain(`points/${p2.pointId}/disk-vda.idx`);
    expect(keys.some((k) => k.startsWith('index/'))).toBe(true);
    const packKeys = keys.filter((k) => k.startsWith('packs/'));
    expect(packKeys.length).toBeGreaterThan(0);
    if (_kind === 'encrypted') expect(keys.some((k) => k.startsWith('keys/'))).toBe(true);

    // a reader with a fresh cache directory: byte-exact, and it fetched only what it read
    const readerCache = path.join(tmp, `reader-${_kind}`);
    const reader = track(await backend.open(dir, { cacheDir: readerCache, mode: 'reader', ...(_kind === 'encrypted' ? { passphrase: TEST_PASSPHRASE } : {}) }));
    expect(reader.remote?.mode).toBe('reader');
    expect((await reader.listPoints()).map((p) => p.pointId)).toEqual([p1.pointId, p2.pointId]);
    expect((await readImage(reader, p2.pointId, 'vda')).equals(image2)).toBe(true);
    expect((await readImage(reader, p1.pointId, 'vda')).equals(image)).toBe(true);
    const rv = await reader.verify({ repair: false });
    expect(rv.problems).toEqual([]);
    expect(rv.ok).toBe(true);
    // a reader never writes: every writing operation is refused before it touches anything
    await expectCode(reader.beginPoint({ vm: VM, pointId: newPointId(), createdAt: new Date(), parentPointId: null }), 'STORE_READ_ONLY');
    await expectCode(reader.deletePoint(p1.pointId, { reason: 'x', actor: 'y' }), 'STORE_READ_ONLY');
    await expectCode(reader.gc({ graceMs: 0 }), 'STORE_READ_ONLY');

    // the writer deletes p1 and collects: the reader's next open no longer sees p1, the packs
    // only p1 used are gone from the store too, and every remaining point is whole
    // a reader whose cache was synced before the collection, reading only after it
    const stale = track(await backend.open(dir, { cacheDir: path.join(tmp, `stale-${_kind}`), mode: 'reader', ...(_kind === 'encrypted' ? { passphrase: TEST_PASSPHRASE } : {}) }));
    await writer.deletePoint(p1.pointId, { reason: 'test', actor: 'test' });
    expect((await storeKeys(backend, dir, `points/${p1.pointId}/`)).length).toBe(0);
    // older than the collection's clock slack (1 s), so that it judges every pack
    await new Promise((r) => setTimeout(r, 1200));
    const gc = await writer.gc({ graceMs: 0, repackBelow: 0.9 });
    expect(gc.packsStillLocked).toEqual([]);
    expect(gc.packsRepacked).toBeGreaterThan(0);
    // its index names packs the collection removed: a miss re-reads the store's index files
    expect((await readImage(stale, p2.pointId, 'vda')).equals(image2)).toBe(true);
    const afterGc = (await storeKeys(backend, dir, 'packs/')).sort();
    const cachePacks: string[] = [];
    for (const ab of await fs.readdir(path.join(dir, 'packs')).catch(() => [])) for (const n of await fs.readdir(path.join(dir, 'packs', ab))) if (/^[0-9a-f]{64}$/.test(n)) cachePacks.push(`packs/${ab}/${n}`);
    expect(afterGc).toEqual(cachePacks.sort());
    expect((await storeKeys(backend, dir, 'index/')).length).toBe(1);
    const wv = await writer.verify({ repair: false });
    expect(wv.problems).toEqual([]);
    await reader.close();
    // encrypted: a passphrase added in the writer's cache reaches readers once published
    const second = 'a second passphrase for the remote repository';
    if (_kind === 'encrypted') {
      await addKey(writer.dir, writer.config.repositoryId, TEST_PASSPHRASE, second, { scrypt: { N: 1024, r: 8, p: 1 } });
      await writer.publishKeys();
    }
    const reader2 = track(await backend.open(dir, { cacheDir: readerCache, mode: 'reader', ...(_kind === 'encrypted' ? { passphrase: second } : {}) }));
    expect((await reader2.listPoints()).map((p) => p.pointId)).toEqual([p2.pointId]);
    expect((await readImage(reader2, p2.pointId, 'vda')).equals(image2)).toBe(true);
    expect((await reader2.verify({ repair: false })).problems).toEqual([]);
  });

  test('a second writer refuses, naming the holder; a closed writer releases the lease', async () => {
    const dir = path.join(tmp, 'repo-lease');
    const first = track(await backend.init(dir, { chunkSize: CS, holder: 'service-a' }));
    const e = await expectCode(backend.open(dir, { holder: 'service-b', cacheDir: path.join(tmp, 'lease-b') }), 'STORE_WRITER_ACTIVE');
    expect(e.message).toContain('service-a');
    expect(e.message).toMatch(/last heartbeat \d{4}-\d\d-\d\dT/);
    expect((e.details as { holder?: string }).holder).toBe('service-a');
    // a reader is welcome meanwhile
    const reader = track(await backend.open(dir, { mode: 'reader', cacheDir: path.join(tmp, 'lease-r') }));
    expect(reader.remote?.mode).toBe('reader');
    await first.close();
    const second = track(await backend.open(dir, { holder: 'service-b', cacheDir: path.join(tmp, 'lease-b') }));
    expect(second.remote?.mode).toBe('writer');
  });

  test('a cache directory belongs to one store: a local repository or another store\'s cache is refused', async () => {
    const dir = path.join(tmp, 'repo-cache');
    track(await backend.init(dir, { chunkSize: CS }));
    const other = path.join(tmp, 'repo-cache-2');
    const second = track(await backend.init(other, { chunkSize: CS }));
    await second.close();
    await expectCode(backend.open(other, { cacheDir: dir, mode: 'reader' }), 'REPO_INVALID');
  });

  test('a reader restores byte-exact while the writer backs up', async () => {
    const dir = path.join(tmp, 'repo-concurrent');
    const writer = track(await backend.init(dir, { chunkSize: CS, packSize: 1 << 20, workers: 2 }));
    const image = randomBytes(32 * CS);
    const p1 = await writePoint(writer, image, null);
    const reader = track(await backend.open(dir, { mode: 'reader', cacheDir: path.join(tmp, 'concurrent-reader') }));
    // a reader may also share the writer's own cache (the CLI beside the service): it only adds to it
    const sharing = track(await backend.open(dir, { mode: 'reader' }));
    expect((await readImage(sharing, p1.pointId, 'vda')).equals(image)).toBe(true);
    const images: Buffer[] = [image];
    let parent = p1;
    const backups = (async () => {
      for (let n = 0; n < 3; n++) {
        const next = changedImage(images[images.length - 1] as Buffer, [n, 10 + n, 20 + n]);
        parent = await writePoint(writer, next, parent, [n, 10 + n, 20 + n]);
        images.push(next);
      }
    })();
    const restores = (async () => {
      for (let n = 0; n < 3; n++) expect((await readImage(reader, p1.pointId, 'vda')).equals(image)).toBe(true);
    })();
    const shared = (async () => {
      for (let n = 0; n < 2; n++) {
        const again = await backend.open(dir, { mode: 'reader' });
        try {
          expect((await readImage(again, p1.pointId, 'vda')).equals(image)).toBe(true);
        } finally {
          await again.close();
        }
      }
    })();
    await Promise.all([backups, restores, shared]);
    expect((await writer.verify({ repair: false })).problems).toEqual([]);
    // a new reader sees every point the writer committed, each byte-exact
    const late = track(await backend.open(dir, { mode: 'reader', cacheDir: path.join(tmp, 'concurrent-late') }));
    const ids = (await late.listPoints()).map((p) => p.pointId);
    expect(ids.length).toBe(4);
    for (const [i, id] of ids.entries()) expect((await readImage(late, id, 'vda')).equals(images[i] as Buffer)).toBe(true);
  });

  test('a fresh writer cache on a new machine: the sync brings every point back and the next backup deduplicates', async () => {
    const dir = path.join(tmp, 'repo-fresh');
    const writer = track(await backend.init(dir, { chunkSize: CS, packSize: 1 << 20 }));
    const image = randomBytes(16 * CS);
    const p1 = await writePoint(writer, image, null);
    await writer.close();
    const cache2 = path.join(tmp, 'fresh-cache-2');
    const w2 = track(await backend.open(dir, { cacheDir: cache2 }));
    expect((await w2.listPoints()).map((p) => p.pointId)).toEqual([p1.pointId]);
    const next = changedImage(image, [3]);
    const packsBefore = new Set(await storeKeys(backend, dir, 'packs/'));
    const p2 = await writePoint(w2, next, p1, [3]);
    expect(p2.disks[0]?.chunksNew).toBe(1);
    // one new chunk and the index node above it went up, nothing of the image was stored again
    const added = (await storeObjects(backend, dir, 'packs/')).filter((o) => !packsBefore.has(o.key));
    expect(added.length).toBeGreaterThan(0);
    expect(added.reduce((n, o) => n + o.size, 0)).toBeLessThan(CS + 64 * KiB);
    expect((await readImage(w2, p2.pointId, 'vda')).equals(next)).toBe(true);
    expect((await w2.verify({ repair: false })).problems).toEqual([]);
  });
  test('two readers syncing one cache at the same time both succeed; the cache is consistent and has no staging left', async () => {
    const dir = path.join(tmp, 'repo-two-readers');
    const writer = track(await backend.init(dir, { chunkSize: CS, packSize: 1 << 20 }));
    const images: Buffer[] = [randomBytes(8 * CS)];
    let parent = await writePoint(writer, images[0] as Buffer, null);
    for (let n = 0; n < 5; n++) {
      images.push(changedImage(images[n] as Buffer, [n]));
      parent = await writePoint(writer, images[n + 1] as Buffer, parent, [n]);
    }
    await writer.close();
    const cacheDir = path.join(tmp, 'two-readers-cache');
    for (let round = 0; round < 2; round++) {
      const readers = await Promise.all([0, 1, 2].map(() => backend.open(dir, { mode: 'reader', cacheDir })));
      readers.forEach(track);
      for (const r of readers) {
        const ids = (await r.listPoints()).map((p) => p.pointId);
        expect(ids).toHaveLength(6);
        expect((await readImage(r, ids[5] as string, 'vda')).equals(images[5] as Buffer)).toBe(true);
      }
      for (const r of open.splice(0)) await r.close();
      expect((await fs.readdir(path.join(cacheDir, 'tmp'))).filter((f) => f.startsWith('.sync'))).toEqual([]);
      for (const id of await fs.readdir(path.join(cacheDir, 'points'))) expect((await fs.readdir(path.join(cacheDir, 'points', id))).sort()).toEqual(['disk-vda.idx', 'manifest.json']);
      if (round === 0) await fs.rm(path.join(cacheDir, 'points'), { recursive: true, force: true });
    }
  });
});
