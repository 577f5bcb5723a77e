/**
 * The product's real backup of a running QEMU VM (runBackup) into a remote repository on the
 * Ceph RGW lab with a retention lock (FORMAT.md §24): every pack it uploads carries Object Lock
 * retention until the point's lock date from its upload — no retention call is made on a pack
 * afterwards — and the manifest carries the same date. An incremental that reuses the full's
 * packs under a later lock extends exactly those (and not the ones it uploads itself).
 */
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup, type BackupResult } from '../../backend/src/backup';
import { LocalHost } from '../../backend/src/hosts';
import { QmpClient } from '../../backend/src/qmp';
import type { Repository } from '../../backend/src/repository';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { initRepo, openRepoOnStore } from '../../backend/src/repository/store/open';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { observedS3Store, type StoreObservation } from '../helpers/observedStore';
import { TestVm } from '../helpers/qemuVm';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';

const MiB = 1 << 20;
const D0 = 'virtio-disk0';
jest.setTimeout(300_000);

let lab: S3LabEnv;
let dir: string;
let vm: TestVm;
let qmp: QmpClient;
let s3: S3Config;
let repo: Repository;
let store: ObjectStore;
let seen: StoreObservation;
let client: S3Client;

beforeAll(async () => {
  lab = await s3Lab();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-remote-backup-lock-'));
  s3 = labS3Config(lab, uniqueBucket('olvm-bklock'), await labCredentialsFile(lab, dir), 'repo');
  const cacheDir = path.join(dir, 'cache');
  await (await initRepo({ kind: 's3', s3, cacheDir })).close();
  ({ store, seen } = await observedS3Store(s3));
  repo = await openRepoOnStore(store, cacheDir);
  vm = await TestVm.create(path.join(dir, 'vm'), [{ id: D0, format: 'qcow2', size: 16 * MiB }]);
  qmp = await QmpClient.connectUnix(vm.productQmp);
  client = new S3Client({
    endpoint: lab.endpoint,
    region: lab.region,
    forcePathStyle: true,
    credentials: { accessKeyId: lab.accessKeyId, secretAccessKey: lab.secretAccessKey },
  });
});
afterAll(async () => {
  client?.destroy();
  await qmp?.close().catch(() => undefined);
  await vm?.dispose();
  await repo?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function backup(lockDays: number): Promise<BackupResult> {
  return runBackup({ vm: { key: 'vm1', name: 'vm1' }, qmp, host: new LocalHost(), repository: repo, scratchDir: path.join(dir, 'scratch'), lockDays });
}

async function packKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list('packs/')) keys.push(o.key);
  return keys.sort();
}

async function retentionOf(key: string): Promise<{ mode?: string; until?: number }> {
  const h = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${s3.prefix}/${key}` }));
  return { ...(h.ObjectLockMode ? { mode: h.ObjectLockMode } : {}), ...(h.ObjectLockRetainUntilDate ? { until: new Date(h.ObjectLockRetainUntilDate).getTime() } : {}) };
}

/** The store keeps retention dates to the second at least; the lock date has milliseconds. */
function expectSameDate(actual: number | undefined, expected: string, what: string): void {
  expect({ what, off: Math.abs((actual ?? 0) - Date.parse(expected)) < 1000 }).toEqual({ what, off: true });
}

test('a locked backup uploads its packs with the lock; none gets a retention call later; an incremental extends only the packs it reuses', async () => {
  await vm.writeRandom(D0, 0, 3 * MiB);
  await vm.writeRandom(D0, 9 * MiB, MiB);
  const full = await backup(1);
  const lock1 = full.manifest.lockedUntil as string;
  expect(lock1).not.toBeNull();
  const packs1 = await packKeys();
  expect(packs1.length).toBeGreaterThan(0);
  expect(seen.retentionCalls.filter((k) => k.startsWith('packs/'))).toEqual([]);
  for (const k of [...packs1, `points/${full.manifest.pointId}/manifest.json`, `points/${full.manifest.pointId}/disk-${D0}.idx`]) {
    const r = await retentionOf(k);
    expect({ k, mode: r.mode }).toEqual({ k, mode: 'COMPLIANCE' });
    expectSameDate(r.until, lock1, k);
  }
  expectSameBytes(await restoredBytes(repo, full.manifest.pointId, D0, path.join(dir, 'r1.raw')), vm.snapshot(D0), 'full');

  // an incremental locked longer: its own new packs again at upload; the full's, which it
  // reuses, extended to its date by one call each
  await vm.writeRandom(D0, 5 * MiB, MiB);
  const inc = await backup(2);
  expect(inc.manifest.disks[0]).toMatchObject({ mode: 'incremental' });
  const lock2 = inc.manifest.lockedUntil as string;
  const added = (await packKeys()).filter((k) => !packs1.includes(k));
  expect(added.length).toBeGreaterThan(0);
  const extended = seen.retentionCalls.filter((k) => k.startsWith('packs/'));
  for (const k of added) expect({ k, extended: extended.includes(k) }).toEqual({ k, extended: false });
  expect(extended.every((k) => packs1.includes(k))).toBe(true);
  for (const k of added) expectSameDate((await retentionOf(k)).until, lock2, k);
  expectSameBytes(await restoredBytes(repo, inc.manifest.pointId, D0, path.join(dir, 'r2.raw')), vm.snapshot(D0), 'incremental');
});
