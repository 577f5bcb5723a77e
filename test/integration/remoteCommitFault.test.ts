/**
 * A remote commit (FORMAT.md §24) failing around its manifest upload, on the Ceph RGW lab: when
 * the manifest reached the store but its reply was lost, the point is committed (the cache gets
 * it too, so gc here cannot delete its packs, and it restores byte for byte from a fresh
 * cache); when it never reached the store, the commit fails and the abort removes what of the
 * point did (its disk index), so nothing of it stays in the store.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, type Repository } from '../../backend/src/repository';
import { initRepo, openRepo, openRepoOnStore } from '../../backend/src/repository/store/open';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { expectCode } from '../helpers/expectCode';
import { readImage } from '../helpers/leasedRead';
import { observedS3Store } from '../helpers/observedStore';
import { CS, VM } from '../helpers/remotePoints';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';

jest.setTimeout(180_000);
let lab: S3LabEnv;
let tmp: string;
const open: Repository[] = [];

beforeAll(async () => {
  lab = await s3Lab();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-remote-commit-'));
});
afterEach(async () => {
  for (const r of open.splice(0)) await r.close().catch(() => undefined);
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function newRepo(name: string): Promise<{ s3: S3Config; cacheDir: string }> {
  const s3 = labS3Config(lab, uniqueBucket(name), await labCredentialsFile(lab, tmp), 'repo');
  const cacheDir = path.join(tmp, `${name}-cache`);
  await (await initRepo({ kind: 's3', s3, cacheDir }, { chunkSize: CS })).close();
  return { s3, cacheDir };
}

/** The points a fresh reader of the store sees. */
async function storePoints(s3: S3Config): Promise<string[]> {
  const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, `list-${randomBytes(4).toString('hex')}`) }, { mode: 'reader' });
  open.push(reader);
  return (await reader.listPoints()).map((p) => p.pointId);
}

/** A point of `image` on disk vda, left open before its commit. */
async function pointReadyToCommit(repo: Repository, image: Buffer): Promise<{ pointId: string; commit: () => Promise<unknown>; abort: () => Promise<void> }> {
  const pointId = newPointId();
  const w = await repo.beginPoint({ vm: VM, pointId, createdAt: new Date(), parentPointId: null });
  const dw = w.beginDisk({ device: 'vda', virtualSize: image.length });
  for (let i = 0; i < image.length / CS; i++) await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
  await dw.finish();
  return {
    pointId,
    commit: () =>
      w.commit({
        disks: [{ device: 'vda', node: 'n', format: 'qcow2', bitmap: 'b', bitmapPersistent: true, mode: 'full', reason: 'first-backup', bytesRead: image.length }],
        consistency: 'crash',
        vmDefinition: null,
      }),
    abort: () => w.abort(),
  };
}

test('the manifest reached the store, its reply was lost: the commit succeeds, the cache has the point, gc keeps its packs, a fresh reader restores it', async () => {
  const { s3, cacheDir } = await newRepo('olvm-lostreply');
  const { store, seen } = await observedS3Store(s3);
  const repo = await openRepoOnStore(store, cacheDir);
  open.push(repo);
  const image = randomBytes(4 * CS);
  const p = await pointReadyToCommit(repo, image);
  seen.failNextManifest = 'lost-reply';
  await p.commit();
  expect(seen.failNextManifest).toBeUndefined(); // the fault did happen
  expect((await repo.listPoints()).map((m) => m.pointId)).toEqual([p.pointId]);
  await repo.gc();
  await repo.close();
  open.splice(open.indexOf(repo), 1);

  expect(await storePoints(s3)).toEqual([p.pointId]);
  const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'lostreply-reader') }, { mode: 'reader' });
  open.push(reader);
  expect((await readImage(reader, p.pointId, 'vda')).equals(image)).toBe(true);
});

test('the manifest never reached the store: the commit fails, its abort removes the disk index it uploaded, nothing of the point stays', async () => {
  const { s3, cacheDir } = await newRepo('olvm-unreach');
  const { store, seen } = await observedS3Store(s3);
  const repo = await openRepoOnStore(store, cacheDir);
  open.push(repo);
  const image = randomBytes(4 * CS);
  const p = await pointReadyToCommit(repo, image);
  const keysOf = async (): Promise<string[]> => {
    const keys: string[] = [];
    for await (const o of store.list(`points/${p.pointId}/`)) keys.push(o.key);
    return keys;
  };
  seen.failNextManifest = 'unreachable';
  await expectCode(p.commit(), 'REPO_IO_ERROR');
  expect(await keysOf()).toEqual([`points/${p.pointId}/disk-vda.idx`]); // what a crash would leave
  await p.abort();
  expect(await keysOf()).toEqual([]);
  expect(await repo.listPoints()).toEqual([]);
  expect(await storePoints(s3)).toEqual([]);

  // the repository goes on: the next point commits normally
  const q = await pointReadyToCommit(repo, image);
  await q.commit();
  expect((await repo.listPoints()).map((m) => m.pointId)).toEqual([q.pointId]);
});
