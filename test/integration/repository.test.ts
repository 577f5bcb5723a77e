import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import {
  DiskIndex,
  newPointId,
  Repository,
  ZERO_DIGEST,
  type ManifestDiskInput,
  type PointWriter,
  type VmIdentity,
} from '../../backend/src/repository';
import { readImage, withPoint } from '../helpers/leasedRead';
import { openRepo, REPO_FORMATS, V1, type RepoFormat } from '../helpers/repoFormats';
import { LOCAL, remoteBackends, type RepoBackend } from '../helpers/repoBackends';
import { BlobType } from '../../backend/src/repository/pack';
import { listIndexFiles, readIndexFile } from '../../backend/src/repository/repoIndex';
import { expectCode } from '../helpers/expectCode';

const KiB = 1024;
const MiB = 1024 * 1024;
const CS = 256 * KiB; // smallest allowed chunk size keeps the tests quick

const tmpDirs: string[] = [];
const repos: Repository[] = [];

async function tempDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-repo-test-'));
  tmpDirs.push(d);
  return d;
}

/** The format and backend the describe block running now is about (describe.each below sets them). */
let format: RepoFormat = V1;
let backend: RepoBackend = LOCAL;

/** Runs `body` once per repository format, with `format` set while its tests run; with
 *  `remote`, format 2 also on every remote backend (FORMAT.md §24: a cache directory and a store). */
function eachFormat(title: string, body: () => void, opts: { remote?: boolean } = {}): void {
  const cases = [
    ...REPO_FORMATS.map((f) => ({ name: f.name, f, b: LOCAL })),
    ...(opts.remote ? remoteBackends().flatMap((b) => REPO_FORMATS.filter((f) => f.init.version === 2).map((f) => ({ name: `${f.name} on ${b.name}`, f, b }))) : []),
  ];
  describe.each(cases)(`${title} ($name)`, ({ f, b }) => {
    beforeAll(() => {
      format = f;
      backend = b;
    });
    afterAll(() => {
      backend = LOCAL;
    });
    body();
  });
}

async function newRepo(chunkSize = CS): Promise<Repository> {
  const repo = await backend.init(path.join(await tempDir(), 'repo'), { ...format.init, chunkSize });
  repos.push(repo);
  return repo;
}

afterAll(async () => {
  for (const r of repos) await r.close();
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});


const vmA: VmIdentity = { key: 'vm-a', name: 'alpha', id: '11111111-2222-3333-4444-555555555555' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };

function diskInput(device: string, mode: 'full' | 'incremental' = 'full'): ManifestDiskInput {
  return {
    device,
    node: `node-${device}`,
    format: 'qcow2',
    mode,
    reason: mode === 'full' ? 'first-backup' : 'incremental',
    bitmap: `olvm-backup-${device}`,
    bitmapPersistent: true,
    bytesRead: 0,
  };
}

function commit(w: PointWriter, devices: string[], mode: 'full' | 'incremental' = 'full') {
  return w.commit({
    disks: devices.map((d) => diskInput(d, mode)),
    consistency: 'crash',
    vmDefinition: { kind: 'ovf', content: '<ovf/>' },
    meta: { test: true },
  });
}

function begin(repo: Repository, vm: VmIdentity = vmA, parentPointId: string | null = null, at = new Date()): Promise<PointWriter> {
  return repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId });
}


/** Puts every non-zero chunk of `image` (zero chunks via putChunk too, to exercise detection). */
async function putImage(w: ReturnType<PointWriter['beginDisk']>, image: Buffer, chunkSize: number): Promise<void> {
  const jobs: Promise<unknown>[] = [];
  for (let off = 0, i = 0; off < image.length; off += chunkSize, i++) {
    jobs.push(w.putChunk(i, Buffer.from(image.subarray(off, Math.min(off + chunkSize, image.length)))));
  }
  await Promise.all(jobs);
}

/** Distinct chunks stored: chunk files (format 1), chunk blobs in the repository index (format 2). */
async function storedChunks(repo: Repository): Promise<number> {
  if (repo.formatVersion === 1) return (await chunkFiles(repo)).length;
  const ids = new Set<string>();
  for (const name of await listIndexFiles(repo.dir)) {
    for (const p of (await readIndexFile(repo.dir, name)).packs) for (const e of p.entries) if (e.type === BlobType.Chunk) ids.add(e.id.toString('hex'));
  }
  return ids.size;
}

async function chunkFiles(repo: Repository): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(path.join(repo.dir, 'chunks'));
  return out;
}

function chunkFile(repo: Repository, digest: Buffer): string {
  const hex = digest.toString('hex');
  return path.join(repo.dir, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
}

describe('repository init / open', () => {
  test('init creates a repository that open reads back', async () => {
    const dir = path.join(await tempDir(), 'r');
    const repo = await Repository.init(dir, { version: 1, chunkSize: 512 * KiB });
    repos.push(repo);
    expect(repo.chunkSize).toBe(512 * KiB);
    const again = await Repository.open(dir);
    repos.push(again);
    expect(again.chunkSize).toBe(512 * KiB);
    expect(again.dir).toBe(path.resolve(dir));
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ format: 'olvm-backup-repository', version: 1, chunkSize: 512 * KiB, hash: 'sha256', compression: 'zstd' });
    expect(await again.listPoints()).toEqual([]);
  });

  test('new repositories are format 2 with 256 KiB chunks and 32 MiB packs; format 1 defaults to 1 MiB chunks', async () => {
    const repo = await Repository.init(path.join(await tempDir(), 'r'));
    repos.push(repo);
    expect([repo.formatVersion, repo.chunkSize, repo.config.packSize, repo.encrypted]).toEqual([2, 256 * KiB, 32 * MiB, false]);
    const v1 = await Repository.init(path.join(await tempDir(), 'r1'), { version: 1 });
    repos.push(v1);
    expect([v1.formatVersion, v1.chunkSize, v1.config.packSize]).toEqual([1, MiB, undefined]);
  });

  test('open errors: missing dir, not a repository, bad config', async () => {
    const base = await tempDir();
    await expectCode(Repository.open(path.join(base, 'nope')), 'REPO_NOT_FOUND');
    await fs.mkdir(path.join(base, 'empty'));
    await expectCode(Repository.open(path.join(base, 'empty')), 'REPO_NOT_FOUND');
    await fs.mkdir(path.join(base, 'bad'));
    await fs.writeFile(path.join(base, 'bad', 'config.json'), '{not json');
    await expectCode(Repository.open(path.join(base, 'bad')), 'REPO_INVALID');
    const good = await Repository.init(path.join(base, 'v2'), { version: 1 });
    await good.close();
    const cfgFile = path.join(base, 'v2', 'config.json');
    const cfg = JSON.parse(await fs.readFile(cfgFile, 'utf8'));
    await fs.writeFile(cfgFile, JSON.stringify({ ...cfg, version: 3 }));
    await expectCode(Repository.open(path.join(base, 'v2')), 'REPO_INVALID');
    // format 2 needs its own fields
    await fs.writeFile(cfgFile, JSON.stringify({ ...cfg, version: 2 }));
    await expectCode(Repository.open(path.join(base, 'v2')), 'REPO_INVALID');
    await fs.writeFile(cfgFile, JSON.stringify({ ...cfg, chunkSize: 1000 }));
    await expectCode(Repository.open(path.join(base, 'v2')), 'REPO_INVALID');
  });

  test('init errors: bad chunk size, twice, non-empty directory', async () => {
    const base = await tempDir();
    await expectCode(Repository.init(path.join(base, 'a'), { chunkSize: 3000 }), 'INVALID_ARGUMENT');
    await expectCode(Repository.init(path.join(base, 'a'), { chunkSize: 128 * KiB }), 'INVALID_ARGUMENT');
    await expectCode(Repository.init(path.join(base, 'a'), { chunkSize: 8 * MiB }), 'INVALID_ARGUMENT');
    await expectCode(Repository.init(path.join(base, 'a'), { chunkSize: 768 * KiB }), 'INVALID_ARGUMENT');
    const r = await Repository.init(path.join(base, 'a'));
    await r.close();
    await expectCode(Repository.init(path.join(base, 'a')), 'REPO_EXISTS');
    await fs.mkdir(path.join(base, 'full'));
    await fs.writeFile(path.join(base, 'full', 'something'), 'x');
    const e = await expectCode(Repository.init(path.join(base, 'full')), 'REPO_EXISTS');
    expect(e.message).toMatch(/not empty/);
  });

  test('newPointId is sortable, unique and directory-safe', () => {
    const a = newPointId(new Date('2026-11-26T08:15:02.999Z'));
    expect(a).toMatch(/^20261126T081502Z-[0-9a-f]{12}$/);
    const ids = new Set(Array.from({ length: 1000 }, () => newPointId(new Date('2026-01-01T00:00:00Z'))));
    expect(ids.size).toBe(1000);
    expect(newPointId(new Date('2026-11-26T08:15:03Z')) > a).toBe(true);
  });
});

eachFormat(
  'writing and reading points',
  () => {
  test('random, zero and duplicate chunks read back equal; manifest and stats are right', async () => {
    const repo = await newRepo();
    const n = 12;
    const image = Buffer.alloc(n * CS);
    const r1 = randomBytes(CS);
    const r2 = randomBytes(CS);
    // chunks: 0 r1, 1 zero, 2 r2, 3 r1 (dup), 4 zero, 5 random, 6 r2 (dup), 7..10 random, 11 zero
    r1.copy(image, 0 * CS);
    r2.copy(image, 2 * CS);
    r1.copy(image, 3 * CS);
    randomBytes(CS).copy(image, 5 * CS);
    r2.copy(image, 6 * CS);
    for (let i = 7; i <= 10; i++) randomBytes(CS).copy(image, i * CS);
    const at = new Date('2026-11-26T08:15:02Z');
    const w = await begin(repo, vmA, null, at);
    const dw = w.beginDisk({ device: 'virtio-disk0', virtualSize: image.length });
    await putImage(dw, image, CS);
    await dw.finish();
    expect(dw.stats).toEqual({ chunksNew: 7, chunksReused: 2, chunksZero: 3, bytesStored: expect.any(Number) });
    expect(dw.stats.bytesStored).toBeGreaterThan(7 * CS); // random data does not compress
    const m = await commit(w, ['virtio-disk0']);
    expect(m.pointId).toBe(w.pointId);
    expect(m.createdAt).toBe(at.toISOString());
    expect(m.chunkSize).toBe(CS);
    expect(m.disks[0]).toMatchObject({
      device: 'virtio-disk0',
      virtualSize: image.length,
      chunksNew: 7,
      chunksReused: 2,
      chunksZero: 3,
      index: { file: 'disk-virtio-disk0.idx', chunkCount: n },
    });
    expect(await fs.readdir(path.join(repo.dir, 'points', w.pointId))).toEqual(['disk-virtio-disk0.idx', 'manifest.json']);
    expect(await storedChunks(repo)).toBe(7);
    expect(await repo.readManifest(w.pointId)).toEqual(m);

    const idx = await repo.readIndex(w.pointId, 'virtio-disk0');
    expect(idx.count).toBe(n);
    expect(idx.isZero(1)).toBe(true);
    expect(idx.digest(1).equals(ZERO_DIGEST)).toBe(true);
    expect(idx.isZero(0)).toBe(false);
    expect(idx.digest(0).equals(idx.digest(3))).toBe(true);
    expect((await readImage(repo, w.pointId, 'virtio-disk0')).equals(image)).toBe(true);
    // the zero digest reads without I/O, any length
    await withPoint(repo, w.pointId, async (r) => {
      expect((await r.readChunk(ZERO_DIGEST, 100)).equals(Buffer.alloc(100))).toBe(true);
      expect((await r.readChunk(idx.digest(0).toString('hex'), CS)).equals(r1)).toBe(true);
    });

    const list = await repo.listPoints();
    expect(list).toEqual([
      {
        pointId: w.pointId,
        vm: vmA,
        createdAt: at.toISOString(),
        lockedUntil: null,
        disks: [{ device: 'virtio-disk0', mode: 'full', reason: 'first-backup', virtualSize: image.length, bytesRead: 0, bytesStored: m.disks[0]!.bytesStored }],
      },
    ]);
    expect((await repo.latestPoint('vm-a'))?.pointId).toBe(w.pointId);
    expect(await repo.latestPoint('vm-b')).toBeUndefined();
    await expectCode(repo.readManifest(newPointId()), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.readManifest('../../etc'), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.readIndex(w.pointId, 'virtio-disk9'), 'REPO_DISK_NOT_FOUND');
  });

  test('dedup: the same data twice is stored once, across disks and points', async () => {
    const repo = await newRepo();
    const data = randomBytes(4 * CS);
    const w = await begin(repo);
    const d0 = w.beginDisk({ device: 'd0', virtualSize: data.length });
    const d1 = w.beginDisk({ device: 'd1', virtualSize: data.length });
    await putImage(d0, data, CS);
    await putImage(d1, data, CS);
    await Promise.all([d0.finish(), d1.finish()]);
    expect(d0.stats.chunksNew + d1.stats.chunksNew).toBe(4);
    expect(d0.stats.chunksReused + d1.stats.chunksReused).toBe(4);
    await commit(w, ['d0', 'd1']);
    expect(await storedChunks(repo)).toBe(4);

    // concurrent puts of the same new content: exactly one stores it
    const w2 = await begin(repo, vmB);
    const same = randomBytes(CS);
    const d2 = w2.beginDisk({ device: 'd0', virtualSize: 8 * CS });
    await Promise.all(Array.from({ length: 8 }, (_, i) => d2.putChunk(i, Buffer.from(same))));
    await d2.finish();
    expect(d2.stats).toEqual({ chunksNew: 1, chunksReused: 7, chunksZero: 0, bytesStored: expect.any(Number) });
    await commit(w2, ['d0']);
    expect(await storedChunks(repo)).toBe(5);
    expect((await readImage(repo, w2.pointId, 'd0')).equals(Buffer.concat(Array(8).fill(same)))).toBe(true);
  });

  test('incremental point on a base replaces a few chunks; both points read back', async () => {
    const repo = await newRepo();
    const n = 10;
    const full = randomBytes(n * CS);
    full.fill(0, 8 * CS, 9 * CS); // chunk 8 zero in the base
    const t1 = new Date('2026-11-26T08:00:00Z');
    const w1 = await begin(repo, vmA, null, t1);
    const dw1 = w1.beginDisk({ device: 'vda', virtualSize: full.length });
    await putImage(dw1, full, CS);
    await dw1.finish();
    const m1 = await commit(w1, ['vda']);

    const next = Buffer.from(full);
    const changed = { 2: randomBytes(CS), 5: randomBytes(CS), 8: randomBytes(CS) };
    for (const [i, b] of Object.entries(changed)) b.copy(next, Number(i) * CS);
    next.fill(0, 9 * CS); // chunk 9 becomes zero: putZero, as base:allocation would say
    const base = await repo.readIndex(m1.pointId, 'vda');
    const t2 = new Date('2026-11-26T09:00:00Z');
    const w2 = await begin(repo, vmA, m1.pointId, t2);
    expect(() => w2.beginDisk({ device: 'other', virtualSize: full.length + CS, base })).toThrow(AppError);
    const dw2 = w2.beginDisk({ device: 'vda', virtualSize: full.length, base });
    expect(dw2.stats).toEqual({ chunksNew: 0, chunksReused: 9, chunksZero: 1, bytesStored: 0 });
    await Promise.all(Object.entries(changed).map(([i, b]) => dw2.putChunk(Number(i), Buffer.from(b))));
    dw2.putZero(9);
    await dw2.finish();
    expect(dw2.stats).toMatchObject({ chunksNew: 3, chunksReused: 6, chunksZero: 1 });
    // 'other' was begun (and fails the size check above before being registered)
    const m2 = await commit(w2, ['vda'], 'incremental');
    expect(m2.parentPointId).toBe(m1.pointId);
    expect(m2.disks[0]).toMatchObject({ mode: 'incremental', reason: 'incremental', chunksNew: 3, chunksReused: 6, chunksZero: 1 });

    expect((await readImage(repo, m1.pointId, 'vda')).equals(full)).toBe(true);
    expect((await readImage(repo, m2.pointId, 'vda')).equals(next)).toBe(true);
    expect((await repo.listPoints({ vmKey: 'vm-a' })).map((p) => p.pointId)).toEqual([m1.pointId, m2.pointId]);
    expect((await repo.latestPoint('vm-a'))?.pointId).toBe(m2.pointId);
  });

  test('the last chunk may be short and is stored at its real length', async () => {
    const repo = await newRepo();
    const size = 3 * CS + 12345;
    const image = randomBytes(size);
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: size });
    await expectCode(dw.putChunk(3, Buffer.alloc(CS)), 'INVALID_ARGUMENT');
    await expectCode(dw.putChunk(4, Buffer.alloc(10)), 'INVALID_ARGUMENT');
    await putImage(dw, image, CS);
    await dw.finish();
    const m = await commit(w, ['vda']);
    expect(m.disks[0]!.index.chunkCount).toBe(4);
    const idx = await repo.readIndex(m.pointId, 'vda');
    expect(idx.chunkLength(3)).toBe(12345);
    expect(idx.chunkLength(2)).toBe(CS);
    expect((await readImage(repo, m.pointId, 'vda')).equals(image)).toBe(true);
    await expectCode(withPoint(repo, m.pointId, (r) => r.readChunk(idx.digest(3), CS)), 'REPO_CORRUPT'); // wrong expected length
  });

  test('puts completing out of order land at their index; the last put of a chunk wins', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: 4 * CS });
    const a = randomBytes(CS);
    const b = randomBytes(CS);
    const c = randomBytes(CS);
    // a big batch in reverse order, with chunk 1 put three times (last: c) and chunk 2 zeroed after a put
    const p = [dw.putChunk(3, Buffer.from(a)), dw.putChunk(1, Buffer.from(a)), dw.putChunk(1, Buffer.from(b)), dw.putChunk(2, Buffer.from(b))];
    dw.putZero(2);
    p.push(dw.putChunk(1, Buffer.from(c)), dw.putChunk(0, Buffer.from(b)));
    await Promise.all(p);
    await dw.finish();
    const s = dw.stats;
    expect(s.chunksNew + s.chunksReused + s.chunksZero).toBe(4);
    const m = await commit(w, ['vda']);
    const img = await readImage(repo, m.pointId, 'vda');
    expect(img.equals(Buffer.concat([b, c, Buffer.alloc(CS), a]))).toBe(true);
  });

  test('a Buffer slice of a larger allocation is copied, not detached', async () => {
    const repo = await newRepo();
    const big = randomBytes(3 * CS);
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: 2 * CS });
    await dw.putChunk(0, big.subarray(0, CS));
    await dw.putChunk(1, big.subarray(CS, 2 * CS));
    expect(big.length).toBe(3 * CS); // not detached
    await dw.finish();
    const m = await commit(w, ['vda']);
    expect((await readImage(repo, m.pointId, 'vda')).equals(big.subarray(0, 2 * CS))).toBe(true);
  });

  test('commit checks that every disk is finished and listed', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: CS });
    w.beginDisk({ device: 'vdb', virtualSize: CS });
    expect(() => w.beginDisk({ device: 'vda', virtualSize: CS })).toThrow(/already begun/);
    await expectCode(commit(w, ['vda', 'vdb']), 'INVALID_ARGUMENT'); // not finished
    await dw.finish();
    await expectCode(commit(w, ['vda']), 'INVALID_ARGUMENT'); // vdb missing
    await w.abort();
    expect(await repo.listPoints()).toEqual([]);
  });
  },
  { remote: true },
);

eachFormat('crash safety and locks', () => {
  test('listPoints ignores a staging dir, a point dir without manifest and a damaged manifest', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: CS });
    await dw.putChunk(0, randomBytes(CS));
    await dw.finish();
    // in progress: staging exists, nothing listed
    expect(await repo.listPoints()).toEqual([]);
    const good = await commit(w, ['vda']);
    const orphan = newPointId();
    await fs.mkdir(path.join(repo.dir, 'points', orphan));
    await fs.writeFile(path.join(repo.dir, 'points', orphan, 'disk-vda.idx'), 'x');
    const damaged = newPointId();
    await fs.mkdir(path.join(repo.dir, 'points', damaged));
    await fs.writeFile(path.join(repo.dir, 'points', damaged, 'manifest.json'), '{"format":');
    await fs.mkdir(path.join(repo.dir, 'tmp', 'vm-x', newPointId()), { recursive: true });
    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([good.pointId]);
    await expectCode(repo.readManifest(orphan), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.readManifest(damaged), 'REPO_CORRUPT');
    const report = await repo.verify();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.pointId, p.kind]).sort()).toEqual(
      [
        [orphan, 'manifest-corrupt'],
        [damaged, 'manifest-corrupt'],
      ].sort(),
    );
  });

  test('abort leaves nothing visible and releases the lock', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: 4 * CS });
    await Promise.all([0, 1, 2, 3].map((i) => dw.putChunk(i, randomBytes(CS))));
    await w.abort();
    await w.abort(); // idempotent
    await expectCode(dw.putChunk(0, randomBytes(CS)), 'INVALID_ARGUMENT');
    expect(await repo.listPoints()).toEqual([]);
    expect(await fs.readdir(path.join(repo.dir, 'points'))).toEqual([]);
    expect(await fs.readdir(path.join(repo.dir, 'tmp', vmA.key))).toEqual([]);
    expect(await fs.readdir(path.join(repo.dir, 'locks'))).toEqual([]);
    const w2 = await begin(repo); // lock is free
    await w2.abort();
  });

  test('abort while puts are in flight waits for them and cleans up', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: 16 * CS });
    const puts = Array.from({ length: 16 }, (_, i) => dw.putChunk(i, randomBytes(CS)).catch(() => 'failed'));
    await w.abort();
    await Promise.all(puts);
    expect(await fs.readdir(path.join(repo.dir, 'tmp', vmA.key))).toEqual([]);
    await w.commit({ disks: [diskInput('vda')], consistency: 'crash', vmDefinition: null }).then(
      () => {
        throw new Error('commit after abort succeeded');
      },
      (err: unknown) => expect((err as AppError).code).toBe('INVALID_ARGUMENT'),
    );
  });

  test('two writers for the same VM: REPO_LOCKED naming the holder; other VMs are independent', async () => {
    const repo = await newRepo();
    const w1 = await begin(repo, vmA);
    const e = await expectCode(begin(repo, vmA), 'REPO_LOCKED');
    expect(e.message).toContain(`pid ${process.pid}`);
    expect(e.message).toContain(os.hostname());
    expect(e.message).toContain(w1.pointId);
    expect((await repo.readLock('vm-a'))?.pid).toBe(process.pid);
    // a second repository object on the same directory sees the same lock
    const other = await openRepo(repo.dir, format);
    repos.push(other);
    await expectCode(begin(other, vmA), 'REPO_LOCKED');
    const wb = await begin(other, vmB);
    const dw = w1.beginDisk({ device: 'vda', virtualSize: CS });
    await dw.putChunk(0, randomBytes(CS));
    await dw.finish();
    await commit(w1, ['vda']);
    expect(await repo.readLock('vm-a')).toBeNull();
    const w3 = await begin(repo, vmA); // free again after commit
    await w3.abort();
    await wb.abort();
  });

  test('a stale lock (dead pid on this host) is taken over; a live foreign one is not', async () => {
    const repo = await newRepo();
    const dead = await deadPid();
    await fs.mkdir(path.join(repo.dir, 'locks'), { recursive: true });
    const lockFile = path.join(repo.dir, 'locks', 'vm-vm-a.lock');
    const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim() || null;
    await fs.writeFile(
      lockFile,
      JSON.stringify({ vmKey: 'vm-a', pid: dead, hostname: os.hostname(), bootId, startedAt: '2020-01-01T00:00:00Z', pointId: null, nonce: 'aa' }),
    );
    const w = await begin(repo, vmA);
    expect((await repo.readLock('vm-a'))?.pid).toBe(process.pid);
    await w.abort();
    // a holder on another host cannot be judged: locked
    await fs.writeFile(
      lockFile,
      JSON.stringify({ vmKey: 'vm-a', pid: dead, hostname: 'elsewhere.example', bootId: null, startedAt: '2020-01-01T00:00:00Z', pointId: null, nonce: 'bb' }),
    );
    const e = await expectCode(begin(repo, vmA), 'REPO_LOCKED');
    expect(e.message).toContain('elsewhere.example');
    expect((await repo.breakLock('vm-a'))?.hostname).toBe('elsewhere.example');
    const w2 = await begin(repo, vmA);
    await w2.abort();
  });

  test('a writer killed with SIGKILL leaves only invisible garbage, cleaned by the next writer', async () => {
    const repo = await newRepo();
    const modulePath = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');
    const script = `
      const { Repository, newPointId } = require(${JSON.stringify(modulePath)});
      const crypto = require('crypto');
      (async () => {
        const repo = await Repository.open(${JSON.stringify(repo.dir)}, ${JSON.stringify(format.open)});
        const w = await repo.beginPoint({ vm: { key: 'vm-a', name: 'alpha' }, pointId: newPointId(), createdAt: new Date(), parentPointId: null });
        const dw = w.beginDisk({ device: 'vda', virtualSize: ${64 * CS} });
        let i = 0;
        const lane = async () => { while (true) { const k = i++ % ${64}; await dw.putChunk(k, crypto.randomBytes(${CS})); if (i === 20) process.stdout.write('writing\\n'); } };
        await Promise.all([lane(), lane(), lane(), lane()]);
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('writing')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await repo.listPoints()).toEqual([]);
    expect((await fs.readdir(path.join(repo.dir, 'tmp', 'vm-a'))).length).toBe(1);
    expect((await repo.readLock('vm-a'))?.pid).toBe(child.pid);
    // next writer: takes over the stale lock, clears the staging area, writes a good point
    const w = await begin(repo, vmA);
    expect(await fs.readdir(path.join(repo.dir, 'tmp', 'vm-a'))).toEqual([w.pointId]);
    const dw = w.beginDisk({ device: 'vda', virtualSize: CS });
    await dw.putChunk(0, randomBytes(CS));
    await dw.finish();
    const m = await commit(w, ['vda']);
    expect(await fs.readdir(path.join(repo.dir, 'tmp', 'vm-a'))).toEqual([]);
    // every chunk file that exists is whole (chunks are fsynced and linked, never partial)
    const report = await repo.verify();
    expect(report.ok).toBe(true);
    if (repo.formatVersion === 1) {
      for (const f of await chunkFiles(repo)) {
        const hex = path.basename(f);
        await withPoint(repo, m.pointId, (r) => r.readChunk(hex, CS));
      }
    } else {
      // every pack that exists is whole: its table parses and every blob it names reads back
      const reopened = await openRepo(repo.dir, format);
      try {
        for (const name of await listIndexFiles(repo.dir)) {
          for (const p of (await readIndexFile(repo.dir, name)).packs) {
            for (const e of p.entries) if (e.type === BlobType.Chunk) await withPoint(reopened, m.pointId, (r) => r.readChunk(e.id, e.plainLength));
          }
        }
      } finally {
        await reopened.close();
      }
      expect(await fs.readdir(path.join(repo.dir, 'tmp', 'vm-a'))).toEqual([]);
    }
  });
});

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((r) => child.once('exit', r));
  return pid;
}

// Format 2's packs are damaged and verified in verifyPacks.test.ts.
describe('verify and corruption (v1 chunk files)', () => {
  beforeAll(() => {
    format = V1;
  });
  async function twoPoints(repo: Repository) {
    const image = randomBytes(6 * CS);
    image.fill(0, 5 * CS);
    const w1 = await begin(repo, vmA, null, new Date('2026-01-01T00:00:00Z'));
    const d1 = w1.beginDisk({ device: 'vda', virtualSize: image.length });
    await putImage(d1, image, CS);
    await d1.finish();
    const m1 = await commit(w1, ['vda']);
    // second point (another VM) shares chunks 1 and 3 at other offsets
    const image2 = Buffer.concat([randomBytes(CS), image.subarray(3 * CS, 4 * CS), image.subarray(CS, 2 * CS)]);
    const w2 = await begin(repo, vmB, null, new Date('2026-01-02T00:00:00Z'));
    const d2 = w2.beginDisk({ device: 'sda', virtualSize: image2.length });
    await putImage(d2, image2, CS);
    await d2.finish();
    const m2 = await commit(w2, ['sda']);
    return { m1, m2, idx1: await repo.readIndex(m1.pointId, 'vda') };
  }

  test('verify of a clean repository', async () => {
    const repo = await newRepo();
    await twoPoints(repo);
    const progress: Array<[number, number]> = [];
    const report = await repo.verify({ onProgress: (d, t) => progress.push([d, t]) });
    expect(report).toMatchObject({ pointsChecked: 2, chunksChecked: 6, bytesChecked: 6 * CS, problems: [], ok: true, quarantined: [], marked: [], cleared: [] });
    expect(report.points.map((p) => p.status)).toEqual(['ok', 'ok']);
    expect(progress[progress.length - 1]).toEqual([6, 6]);
  });

  test('a flipped byte and a deleted chunk are reported for every point that references them', async () => {
    const repo = await newRepo();
    const { m1, m2, idx1 } = await twoPoints(repo);
    const flipped = chunkFile(repo, idx1.digest(1));
    await fs.chmod(flipped, 0o644);
    const raw = await fs.readFile(flipped);
    raw[raw.length >> 1]! ^= 0x01;
    await fs.writeFile(flipped, raw);
    await fs.rm(chunkFile(repo, idx1.digest(3)));
    await expectCode(withPoint(repo, m1.pointId, (r) => r.readChunk(idx1.digest(1), CS)), 'REPO_CORRUPT');
    const missing = await expectCode(withPoint(repo, m1.pointId, (r) => r.readChunk(idx1.digest(3), CS)), 'REPO_CORRUPT');
    expect(missing.message).toContain(idx1.digestHex(3));

    // repair: false keeps the corrupt file in place (with repair it goes to quarantine/)
    const report = await repo.verify({ repair: false });
    expect(report.ok).toBe(false);
    expect(report.chunksChecked).toBe(6);
    const got = report.problems.map((p) => ({ pointId: p.pointId, device: p.device, chunk: p.chunk, offset: p.offset, kind: p.kind }));
    const sortKey = (p: { pointId: string | null; offset: number | null }): string => `${p.pointId}:${p.offset}`;
    expect(got.sort((a, b) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
      [
        { pointId: m1.pointId, device: 'vda', chunk: idx1.digestHex(1), offset: 1 * CS, kind: 'chunk-corrupt' },
        { pointId: m1.pointId, device: 'vda', chunk: idx1.digestHex(3), offset: 3 * CS, kind: 'chunk-missing' },
        { pointId: m2.pointId, device: 'sda', chunk: idx1.digestHex(3), offset: 1 * CS, kind: 'chunk-missing' },
        { pointId: m2.pointId, device: 'sda', chunk: idx1.digestHex(1), offset: 2 * CS, kind: 'chunk-corrupt' },
      ].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    );
    for (const p of report.problems) expect(p.message).toContain(p.pointId);

    const one = await repo.verify({ pointId: m2.pointId });
    expect(one.pointsChecked).toBe(1);
    expect(one.chunksChecked).toBe(3);
    expect(one.problems.map((p) => p.kind).sort()).toEqual(['chunk-corrupt', 'chunk-missing']);
    await expectCode(repo.verify({ pointId: newPointId() }), 'REPO_POINT_NOT_FOUND');
  });

  test('a corrupted or missing index is reported; readIndex says REPO_CORRUPT', async () => {
    const repo = await newRepo();
    const { m1, m2 } = await twoPoints(repo);
    const idxFile = path.join(repo.dir, 'points', m1.pointId, m1.disks[0]!.index.file);
    const raw = await fs.readFile(idxFile);
    raw[40]! ^= 0xff;
    await fs.writeFile(idxFile, raw);
    await expectCode(repo.readIndex(m1.pointId, 'vda'), 'REPO_CORRUPT');
    await fs.rm(path.join(repo.dir, 'points', m2.pointId, m2.disks[0]!.index.file));
    await expectCode(repo.readIndex(m2.pointId, 'sda'), 'REPO_CORRUPT');
    const report = await repo.verify();
    expect(report.problems.map((p) => [p.pointId, p.device, p.kind]).sort()).toEqual(
      [
        [m1.pointId, 'vda', 'index-corrupt'],
        [m2.pointId, 'sda', 'index-missing'],
      ].sort(),
    );
  });

  test('verify can be aborted', async () => {
    const repo = await newRepo();
    await twoPoints(repo);
    const ctl = new AbortController();
    ctl.abort();
    await expectCode(repo.verify({ signal: ctl.signal }), 'ABORTED');
  });

  test('DiskIndex encoding round-trips and rejects bad input', async () => {
    const repo = await newRepo();
    const { m1 } = await twoPoints(repo);
    const idx = await repo.readIndex(m1.pointId, 'vda');
    const enc = idx.encode();
    expect(enc.subarray(0, 8).toString('latin1')).toBe('OLVBIDX\0');
    expect(enc.readUInt32LE(8)).toBe(1);
    expect(enc.readUInt32LE(12)).toBe(CS);
    expect(Number(enc.readBigUInt64LE(16))).toBe(6 * CS);
    expect(Number(enc.readBigUInt64LE(24))).toBe(6);
    expect(enc.length).toBe(32 + 6 * 32);
    const back = DiskIndex.parse(enc, 'test');
    expect(back.digest(2).equals(idx.digest(2))).toBe(true);
    expect(() => DiskIndex.parse(enc.subarray(0, enc.length - 1), 'test')).toThrow(/length/);
  });
});

eachFormat('worker pool', () => {
  test('a crashed worker rejects its pending jobs with a coded error; the pool recovers', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: 4 * CS });
    const img = randomBytes(4 * CS);
    await putImage(dw, img.subarray(0, 2 * CS), CS); // chunks 0, 1 stored by workers, dirs not yet synced
    const err = await expectCode(repo.crashWorkerForTest(), 'REPO_IO_ERROR');
    expect(err.message).toMatch(/exited unexpectedly/);
    await Promise.all([2, 3].map((i) => dw.putChunk(i, Buffer.from(img.subarray(i * CS, (i + 1) * CS)))));
    if (repo.formatVersion === 2) {
      // a pack the dead worker was filling is lost with it: the point cannot be committed
      // (its chunks would be missing), the writer says so, and the next point works
      await expectCode(dw.finish(), 'REPO_IO_ERROR');
      await w.abort();
      const w2 = await begin(repo);
      const dw2 = w2.beginDisk({ device: 'vda', virtualSize: 4 * CS });
      await putImage(dw2, img, CS);
      await dw2.finish();
      const m2 = await commit(w2, ['vda']);
      expect((await readImage(repo, m2.pointId, 'vda')).equals(img)).toBe(true);
      return;
    }
    await dw.finish(); // the dead worker's directories are covered by a sweep of chunks/
    const m = await commit(w, ['vda']);
    expect((await readImage(repo, m.pointId, 'vda')).equals(img)).toBe(true);
  });

  test('close() stops the workers; the repository can be used again afterwards', async () => {
    const repo = await newRepo();
    const w = await begin(repo);
    await repo.close(); // aborts the open writer too
    expect(await repo.readLock('vm-a')).toBeNull();
    const w2 = await begin(repo);
    expect(w2.pointId).not.toBe(w.pointId);
    const dw = w2.beginDisk({ device: 'vda', virtualSize: CS });
    await dw.putChunk(0, randomBytes(CS));
    await dw.finish();
    await commit(w2, ['vda']);
  });

  test('throughput: 256 MiB of random data through putChunk with 16 in flight (printed, not asserted)', async () => {
    const repo = await newRepo(MiB);
    const n = 256;
    const chunks = Array.from({ length: n }, () => randomBytes(MiB));
    const w = await begin(repo);
    const dw = w.beginDisk({ device: 'vda', virtualSize: n * MiB });
    const t0 = process.hrtime.bigint();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        await dw.putChunk(i, chunks[i]!);
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
    const t1 = process.hrtime.bigint();
    await dw.finish();
    const t2 = process.hrtime.bigint();
    await commit(w, ['vda']);
    const t3 = process.hrtime.bigint();
    const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;
    const result = {
      bench: 'repository.putChunk',
      chunkSize: MiB,
      inFlight: 16,
      workers: os.availableParallelism(),
      bytes: n * MiB,
      putMs: Math.round(ms(t0, t1)),
      finishMs: Math.round(ms(t1, t2)),
      commitMs: Math.round(ms(t2, t3)),
      mbPerSec: Math.round((n * MiB) / MiB / (ms(t0, t2) / 1000)),
      format: repo.formatVersion,
      ...(repo.formatVersion === 1 ? { chunkDirs: new Set((await chunkFiles(repo)).map((f) => path.dirname(f))).size } : {}),
    };
     
    console.log(JSON.stringify(result));
    expect(dw.stats.chunksNew).toBe(n);
  });
});
