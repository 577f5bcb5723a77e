/**
 * Object Lock on a remote repository (FORMAT.md §24), on the Ceph RGW lab with compliance mode:
 * a locked point's manifest, disk indexes and packs get retention at upload; a reused pack's
 * retention is extended; neither the product (even after an operator's unlock) nor a raw S3
 * client with the same credentials (DeleteObject with the version id, with or without
 * BypassGovernanceRetention) can delete them before the date; prune reports them "still
 * locked" and goes on; once the date passes they go. A bucket without Object Lock is refused.
 */
import { DeleteObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { AppError } from '../../backend/src/errors';
import { newPointId, type Repository } from '../../backend/src/repository';
import { initRepo, openRepo } from '../../backend/src/repository/store/open';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { expectCode } from '../helpers/expectCode';
import { readImage } from '../helpers/leasedRead';
import { changedImage, CS, writePoint } from '../helpers/remotePoints';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';

let lab: S3LabEnv;
let tmp: string;
const open: Repository[] = [];

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

async function newS3(name: string): Promise<S3Config> {
  return labS3Config(lab, uniqueBucket(name), await labCredentialsFile(lab, tmp), 'repo');
}

/** Every version of every key under `prefix` of the repository. */
async function versions(client: S3Client, s3: S3Config, prefix: string): Promise<Array<{ key: string; versionId: string }>> {
  const out: Array<{ key: string; versionId: string }> = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const r = await client.send(new ListObjectVersionsCommand({ Bucket: s3.bucket, Prefix: `${s3.prefix}/${prefix}`, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of r.Versions ?? []) out.push({ key: v.Key as string, versionId: v.VersionId as string });
    if (!r.IsTruncated) return out;
    keyMarker = r.NextKeyMarker;
    versionMarker = r.NextVersionIdMarker;
  }
}

async function rawDelete(client: S3Client, s3: S3Config, v: { key: string; versionId: string }, bypass: boolean): Promise<string | null> {
  return client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: v.key, VersionId: v.versionId, ...(bypass ? { BypassGovernanceRetention: true } : {}) })).then(
    () => null,
    (err: Error) => err.name,
  );
}

async function retentionOf(client: S3Client, s3: S3Config, key: string): Promise<{ mode?: string; until?: Date }> {
  const h = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${s3.prefix}/${key}` }));
  return { ...(h.ObjectLockMode ? { mode: h.ObjectLockMode } : {}), ...(h.ObjectLockRetainUntilDate ? { until: new Date(h.ObjectLockRetainUntilDate) } : {}) };
}

async function until(t: Date): Promise<void> {
  const ms = t.getTime() - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

beforeAll(async () => {
  lab = await s3Lab();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-remote-lock-'));
});
afterEach(async () => {
  for (const r of open.splice(0)) await r.close().catch(() => undefined);
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('remote repository with Object Lock (s3, compliance)', () => {
  test('a locked point cannot be deleted through the product nor by a raw S3 client with the same credentials until its date', async () => {
    const s3 = await newS3('olvm-lock');
    const cacheDir = path.join(tmp, 'lock-cache');
    const repo = await initRepo({ kind: 's3', s3, cacheDir }, { chunkSize: CS, packSize: 1 << 20 });
    open.push(repo);
    const image = randomBytes(12 * CS);
    const lockedUntil = new Date(Date.now() + 15_000);
    const p1 = await writePoint(repo, image, null, undefined, lockedUntil);
    const image2 = changedImage(image, [2]);
    const p2 = await writePoint(repo, image2, p1, [2]);

    const client = rawClient();
    try {
      // retention at upload on the manifest, the disk index and every pack p1 wrote
      const pointVersions = await versions(client, s3, `points/${p1.pointId}/`);
      expect(pointVersions.map((v) => path.basename(v.key)).sort()).toEqual(['disk-vda.idx', 'manifest.json']);
      const manifestRet = await retentionOf(client, s3, `points/${p1.pointId}/manifest.json`);
      expect(manifestRet.mode).toBe('COMPLIANCE');
      expect(Math.abs((manifestRet.until as Date).getTime() - lockedUntil.getTime())).toBeLessThan(1000);
      const p1Packs = (await versions(client, s3, 'packs/')).filter((v) => v.key !== undefined);
      expect(p1Packs.length).toBeGreaterThan(0);
      let lockedPacks = 0;
      for (const v of p1Packs) if ((await retentionOf(client, s3, v.key.slice(s3.prefix.length + 1))).mode === 'COMPLIANCE') lockedPacks++;
      expect(lockedPacks).toBeGreaterThan(0); // p2's own pack (unlocked) has none

      // the product refuses (the repository's own lock)
      await expectCode(repo.deletePoint(p1.pointId, { reason: 'test', actor: 'test' }), 'REPO_POINT_LOCKED');
      // a raw client with the service's credentials: every locked version refuses, bypass or not
      for (const v of [...pointVersions, ...p1Packs]) {
        const locked = (await retentionOf(client, s3, v.key.slice(s3.prefix.length + 1))).mode === 'COMPLIANCE';
        if (!locked) continue;
        expect(await rawDelete(client, s3, v, false)).toBe('AccessDenied');
        expect(await rawDelete(client, s3, v, true)).toBe('AccessDenied');
      }
      // an operator's unlock clears the repository's lock, but the store still refuses: the
      // point stays whole, here and in the store; prune reports it still locked and goes on
      await repo.unlockPoint(p1.pointId, { reason: 'test', operator: 'tester' });
      const afterUnlock = await versions(client, s3, `points/${p1.pointId}/`);
      expect(afterUnlock.length).toBe(3); // the locked manifest, the unlocked one over it, the index
      const refused = await repo.deletePoint(p1.pointId, { reason: 'test', actor: 'test' }).then(
        () => null,
        (err: Error) => err,
      );
      expect((refused as AppError | null)?.code).toBe('STORE_OBJECT_LOCKED');
      const reported = Date.parse(String((refused as AppError).details?.lockedUntil));
      expect(Math.abs(reported - lockedUntil.getTime())).toBeLessThan(1000);
      // refused as a whole: every version stays, the unlocked manifest version too
      expect(await versions(client, s3, `points/${p1.pointId}/`)).toEqual(afterUnlock);
      await expectCode(repo.deletePoint(p1.pointId, { reason: 'test', actor: 'test' }), 'STORE_OBJECT_LOCKED');
      expect(await versions(client, s3, `points/${p1.pointId}/`)).toEqual(afterUnlock);
      const pruned = await repo.prune({ keepLast: 1 }, { actor: 'test' });
      expect(pruned.stillLocked).toEqual([p1.pointId]);
      expect(pruned.locked).toEqual([p1.pointId]);
      expect(pruned.removed).toEqual([]);
      expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([p1.pointId, p2.pointId]);
      const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'lock-reader') }, { mode: 'reader' });
      open.push(reader);
      expect((await reader.listPoints()).map((p) => p.pointId)).toEqual([p1.pointId, p2.pointId]);
      expect((await readImage(reader, p1.pointId, 'vda')).equals(image)).toBe(true);
      // the collection keeps every pack p1 needs
      const gc = await repo.gc({ graceMs: 0 });
      expect(gc.packsStillLocked).toEqual([]);
      expect((await readImage(repo, p1.pointId, 'vda')).equals(image)).toBe(true);

      // once the date has passed the store lets it go
      await until(new Date(lockedUntil.getTime() + 1500));
      const del = await repo.deletePoint(p1.pointId, { reason: 'test', actor: 'test' });
      expect(del.pointId).toBe(p1.pointId);
      expect(await versions(client, s3, `points/${p1.pointId}/`)).toEqual([]);
      await repo.gc({ graceMs: 0 });
      expect((await readImage(repo, p2.pointId, 'vda')).equals(image2)).toBe(true);
      expect((await repo.verify({ repair: false })).problems).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  test('packs a locked point reuses get their retention extended; extending the lock extends them all', async () => {
    const s3 = await newS3('olvm-extend');
    const repo = await initRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'extend-cache') }, { chunkSize: CS, packSize: 1 << 20 });
    open.push(repo);
    const image = randomBytes(8 * CS);
    const p1 = await writePoint(repo, image, null);
    const client = rawClient();
    try {
      const packs = (await versions(client, s3, 'packs/')).map((v) => v.key.slice(s3.prefix.length + 1));
      for (const k of packs) expect((await retentionOf(client, s3, k)).mode).toBeUndefined();
      const lock1 = new Date(Date.now() + 5_000);
      const p2 = await writePoint(repo, changedImage(image, [1]), p1, [1], lock1);
      // every pack of p1 holds blobs p2 refers to: its retention now runs until p2's lock
      for (const k of packs) {
        const r = await retentionOf(client, s3, k);
        expect(r.mode).toBe('COMPLIANCE');
        expect((r.until as Date).getTime()).toBeGreaterThanOrEqual(lock1.getTime() - 1000);
      }
      const lock2 = new Date(Date.now() + 8_000);
      await repo.extendLock(p2.pointId, lock2, { actor: 'test' });
      for (const k of [...packs, `points/${p2.pointId}/manifest.json`, `points/${p2.pointId}/disk-vda.idx`]) {
        const r = await retentionOf(client, s3, k);
        expect(Math.abs((r.until as Date).getTime() - lock2.getTime())).toBeLessThan(1000);
      }
      // a fresh reader sees the new lock
      const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'extend-reader') }, { mode: 'reader' });
      open.push(reader);
      expect((await reader.readManifest(p2.pointId)).lockedUntil).toBe(lock2.toISOString());
    } finally {
      client.destroy();
    }
  });

  test('gc leaves a dead pack whose retention runs ("still locked") and removes it once the date passes', async () => {
    const s3 = await newS3('olvm-gclock');
    const repo = await initRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'gclock-cache') }, { chunkSize: CS, packSize: 1 << 20 });
    open.push(repo);
    const image = randomBytes(6 * CS);
    const p1 = await writePoint(repo, image, null);
    const client = rawClient();
    try {
      const before = new Set((await versions(client, s3, 'packs/')).map((v) => v.key));
      // a writer that began a locked point uploads its packs with retention, then aborts:
      // the packs are garbage the store keeps until the date
      const lockedUntil = new Date(Date.now() + 10_000);
      const w = await repo.beginPoint({ vm: { key: 'vm-gone', name: 'gone' }, pointId: newPointId(), createdAt: new Date(), parentPointId: null, lockedUntil });
      const dw = w.beginDisk({ device: 'vda', virtualSize: 4 * CS });
      const other = randomBytes(4 * CS);
      for (let i = 0; i < 4; i++) await dw.putChunk(i, Buffer.from(other.subarray(i * CS, (i + 1) * CS)));
      await dw.finish();
      await w.abort();
      const dead = (await versions(client, s3, 'packs/')).map((v) => v.key).filter((k) => !before.has(k));
      expect(dead.length).toBeGreaterThan(0);
      for (const k of dead) expect((await retentionOf(client, s3, k.slice(s3.prefix.length + 1))).mode).toBe('COMPLIANCE');

      // older than the collection's clock slack (1 s), so that it judges them
      await new Promise((r) => setTimeout(r, 1500));
      const gc1 = await repo.gc({ graceMs: 0 });
      expect((gc1.packsStillLocked ?? []).map((n) => `${s3.prefix}/packs/${n.slice(0, 2)}/${n}`).sort()).toEqual([...dead].sort());
      expect((await versions(client, s3, 'packs/')).length).toBe(before.size + dead.length);

      await until(new Date(lockedUntil.getTime() + 1500));
      const gc2 = await repo.gc({ graceMs: 0 });
      expect(gc2.packsStillLocked).toEqual([]);
      expect(new Set((await versions(client, s3, 'packs/')).map((v) => v.key))).toEqual(before);
      expect((await readImage(repo, p1.pointId, 'vda')).equals(image)).toBe(true);
      expect((await repo.verify({ repair: false })).problems).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  test('governance: the store refuses a locked point until an operator opens with bypassGovernance', async () => {
    const s3 = await newS3('olvm-gov');
    const cacheDir = path.join(tmp, 'gov-cache');
    const repo = await initRepo({ kind: 's3', s3, cacheDir }, { chunkSize: CS, objectLock: 'governance' });
    const image = randomBytes(4 * CS);
    const p1 = await writePoint(repo, image, null, undefined, new Date(Date.now() + 3_600_000));
    const client = rawClient();
    try {
      expect((await retentionOf(client, s3, `points/${p1.pointId}/manifest.json`)).mode).toBe('GOVERNANCE');
    } finally {
      client.destroy();
    }
    await repo.unlockPoint(p1.pointId, { reason: 'test', operator: 'tester' });
    const refused = await expectCode(repo.deletePoint(p1.pointId, { reason: 'test', actor: 'service' }), 'STORE_OBJECT_LOCKED');
    // the message names the operator's way (cliS3Governance.test.ts runs it)
    expect(refused.message).toMatch(/governance mode: an operator may delete it with 'points delete --bypass-governance'/);
    expect(refused.details).toMatchObject({ objectLockMode: 'governance' });
    await repo.close();
    // the operator's documented path: a writer opened with the bypass
    const operator = await openRepo({ kind: 's3', s3, cacheDir }, { bypassGovernance: true, objectLockMode: 'governance' });
    open.push(operator);
    // the refused deletion deleted nothing: the store's current manifest is still the unlocked one
    expect((await operator.readManifest(p1.pointId)).lockedUntil).toBeNull();
    await operator.deletePoint(p1.pointId, { reason: 'operator removes it', actor: 'tester' });
    expect(await operator.listPoints()).toEqual([]);
    const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'gov-reader') }, { mode: 'reader' });
    open.push(reader);
    expect(await reader.listPoints()).toEqual([]);
  });

  test('a writer refuses a bucket without Object Lock unless requireObjectLock is false', async () => {
    const s3 = await newS3('olvm-nolock');
    await expectCode(initRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'nolock-cache') }, { objectLock: 'off' }), 'STORE_NO_OBJECT_LOCK');
    const repo = await initRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'nolock-cache-2') }, { objectLock: 'off', requireObjectLock: false });
    await repo.close();
    await expectCode(openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'nolock-cache-2') }), 'STORE_NO_OBJECT_LOCK');
    const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(tmp, 'nolock-reader') }, { mode: 'reader' });
    open.push(reader);
    expect(reader.remote?.mode).toBe('reader');
  });
});
