import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openRepo, type Repository } from '../../backend/src/repository';
import { openStore } from '../../backend/src/repository/store/stores';
import { runCli, type CliRun } from '../helpers/cli';
import { TestVm } from '../helpers/qemuVm';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';

// The operator's path on object storage, end to end through the real Ceph RGW of the lab and
// the installed command: `repo init` creates the bucket with Object Lock, a backup of a QEMU
// VM's disk goes up locked, a second machine (another cache directory, a reader) restores it
// byte for byte, and a second writer is refused while one holds the prefix.
const MiB = 1 << 20;
const DISK = 'virtio-disk0';
jest.setTimeout(300_000);

let dir: string;
let lab: S3LabEnv;
let vm: TestVm;
let bucket: string;
let url: string;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-cli-s3-e2e-'));
  lab = await s3Lab();
  bucket = uniqueBucket('cli');
  url = `s3://${bucket}/site-a/olvm`;
  // credentials as an operator gives them: the environment, nothing on the command line
  env = { AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey, AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_PROFILE: undefined, HOME: path.join(dir, 'home') };
  vm = await TestVm.create(path.join(dir, 'vm'), [{ id: DISK, format: 'qcow2', size: 16 * MiB }]);
});
afterAll(async () => {
  await vm?.dispose();
  await fs.rm(dir, { recursive: true, force: true });
});

const cli = (args: string[], cache: string): Promise<CliRun> => runCli([...args, '--repo', url, '--s3-endpoint', lab.endpoint, '--cache', path.join(dir, cache)], 240_000, env);

async function ok(args: string[], cache: string): Promise<string> {
  const r = await cli(args, cache);
  expect({ args: args.join(' '), code: r.code, stderr: r.stderr }).toEqual({ args: args.join(' '), code: 0, stderr: '' });
  return r.stdout;
}

test('repo init → backup locked → restore from a second cache, byte-exact → a second writer refused', async () => {
  // init: the bucket does not exist yet; it is created with Object Lock (compliance by default)
  const init = JSON.parse(await ok(['repo', 'init', '--json'], 'writer-cache')) as Record<string, unknown>;
  expect(init).toMatchObject({ repo: url, cache: path.join(dir, 'writer-cache'), objectLock: 'compliance', format: 2, encrypted: false });
  const info = JSON.parse(await ok(['repo', 'info', '--json'], 'info-cache')) as { remote: unknown; store: { objectLock: { enabled: boolean }; writer: unknown } };
  expect(info.remote).toEqual({ location: url, mode: 'reader' });
  expect(info.store).toEqual({ objectLock: expect.objectContaining({ enabled: true }), writer: null });
  const again = await cli(['repo', 'init'], 'other-cache');
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/is already a repository/);

  // a backup of the VM's disk, committed under a retention lock of one day
  await vm.writeRandom(DISK, 0, 3 * MiB);
  await vm.writeRandom(DISK, 9 * MiB, MiB);
  const backup = JSON.parse(await ok(['backup', '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir, '--lock-days', '1', '--json'], 'writer-cache')) as { point: string; lockedUntil: string };
  expect(Date.parse(backup.lockedUntil)).toBeGreaterThan(Date.now() + 23 * 3600_000);

  // in the store: the point's manifest is under compliance retention until its lock
  const store = await openStore({ kind: 's3', s3: labS3Config(lab, bucket, await labCredentialsFile(lab, dir), 'site-a/olvm'), requireObjectLock: true });
  try {
    const keys: string[] = [];
    for await (const o of store.list('points/')) keys.push(o.key);
    const manifest = keys.find((k) => k.includes(backup.point) && k.endsWith('manifest.json'));
    expect(manifest).toBeDefined();
    const head = await store.head(manifest as string);
    expect(head?.retention?.mode).toBe('compliance');
    expect(head?.retention && head.retention.until.getTime()).toBeGreaterThanOrEqual(Date.parse(backup.lockedUntil) - 1000);
    expect(await store.delete(manifest as string)).toMatchObject({ state: 'locked' });
  } finally {
    await store.close();
  }

  // another machine: a fresh cache, a reader; the restore is the disk as it was, byte for byte
  const points = JSON.parse(await ok(['points', '--json'], 'reader-cache')) as Array<{ pointId: string }>;
  expect(points.map((p) => p.pointId)).toEqual([backup.point]);
  const out = path.join(dir, 'restored.raw');
  await ok(['restore', '--point', backup.point, '--disk', DISK, '--out', out], 'reader-cache');
  expect((await fs.readFile(out)).equals(vm.snapshot(DISK))).toBe(true);

  // one writer per prefix: while this process holds it, the command line's writer is refused, naming it
  let writer: Repository | undefined = await openRepo(
    { kind: 's3', s3: labS3Config(lab, bucket, await labCredentialsFile(lab, dir), 'site-a/olvm'), cacheDir: path.join(dir, 'service-cache') },
    { mode: 'writer', holder: 'test-service' },
  );
  try {
    const refused = await cli(['gc', '--grace', '0'], 'writer-cache');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/has a writer already: test-service on .* last heartbeat/);
    // readers are not writers: they keep working
    await ok(['show', '--point', backup.point, '--json'], 'reader-cache');
    await writer.close();
    writer = undefined;
    const gc = JSON.parse(await ok(['gc', '--grace', '0', '--json'], 'writer-cache')) as { pointsMarked: number };
    expect(gc.pointsMarked).toBe(1);
  } finally {
    await writer?.close();
  }
});

test('an encrypted repository on s3: a key added through the writer is in the store, a fresh reader opens it with the new passphrase', async () => {
  const enc = `s3://${bucket}/encrypted`;
  const pp = path.join(dir, 'pp');
  const pp2 = path.join(dir, 'pp2');
  await fs.writeFile(pp, 'the first passphrase\n', { mode: 0o600 });
  await fs.writeFile(pp2, 'the second passphrase\n', { mode: 0o600 });
  const run = async (args: string[], cache: string): Promise<string> => {
    const r = await runCli([...args, '--repo', enc, '--s3-endpoint', lab.endpoint, '--cache', path.join(dir, cache)], 240_000, { ...env, OLVM_BACKUP_REPO_PASSPHRASE: undefined });
    expect({ args: args.join(' '), code: r.code, stderr: r.stderr }).toEqual({ args: args.join(' '), code: 0, stderr: '' });
    return r.stdout;
  };
  await run(['repo', 'init', '--encryption', 'aes-256-gcm', '--passphrase-file', pp], 'enc-writer');
  await run(['key', 'add', '--passphrase-file', pp, '--new-passphrase-file', pp2, '--label', 'offsite admin'], 'enc-writer');
  const keys = JSON.parse(await run(['key', 'list', '--passphrase-file', pp2, '--json'], 'enc-reader')) as Array<{ label?: string }>;
  expect(keys.map((k) => k.label ?? null).sort()).toEqual([null, 'offsite admin'].sort());
  expect(JSON.parse(await run(['points', '--passphrase-file', pp2, '--json'], 'enc-reader-2'))).toEqual([]);
});
