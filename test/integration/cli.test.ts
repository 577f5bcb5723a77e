import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { readPassphrase } from '../../backend/src/config';
import { Repository } from '../../backend/src/repository';
import { TestVm } from '../helpers/qemuVm';
import { runCli, type CliRun } from '../helpers/cli';
import { CS, writePoint } from './retentionFixture';

const MiB = 1 << 20;
const DAY_MS = 86_400_000;


const cli = (...args: string[]): Promise<CliRun> => runCli(args);

/** A failure is one line on stderr, naming the problem, and a non-zero exit. */
function expectOneLineError(r: CliRun, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^olvm-backup: /);
  expect(lines[0]).toMatch(pattern);
}

describe('olvm-backup command line', () => {
  let dir: string;
  let repo: string;
  let vm: TestVm;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-cli-'));
    repo = path.join(dir, 'repo');
    vm = await TestVm.create(path.join(dir, 'vm'), [{ id: 'virtio-disk0', format: 'qcow2', size: 16 * MiB }]);
  });
  afterAll(async () => {
    await vm?.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('init, backup twice, list, restore, verify, then detect a corrupted chunk', async () => {
    // format 1: the end of this test damages a chunk file (format 2's packs: verifyPacks.test.ts)
    const init = await cli('repo', 'init', '--repo', repo, '--format', '1', '--chunk-size', '256K');
    expect(init.code).toBe(0);

    await vm.writeRandom('virtio-disk0', 0, 2 * MiB);
    const first = await cli('backup', '--repo', repo, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir, '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const p1 = JSON.parse(first.stdout) as { point: string; vm: string; disks: Array<Record<string, unknown>> };
    expect(p1.vm).toBe('web1');
    expect(p1.disks).toEqual([
      { device: 'virtio-disk0', node: 'libvirt-1-format', mode: 'full', reason: 'first-backup', bytesRead: 2 * MiB },
    ]);

    await vm.writeRandom('virtio-disk0', 8 * MiB, 4096);
    const second = await cli('backup', '--repo', repo, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir, '--json');
    const p2 = JSON.parse(second.stdout) as typeof p1;
    expect(p2.disks[0]).toMatchObject({ mode: 'incremental', reason: 'incremental', bytesRead: 256 * 1024 });

    const list = await cli('points', '--repo', repo, '--vm', 'web1', '--json');
    expect((JSON.parse(list.stdout) as Array<{ pointId: string }>).map((p) => p.pointId)).toEqual([p1.point, p2.point]);
    const table = await cli('points', '--repo', repo);
    expect(table.stdout).toContain(p2.point);

    const out = path.join(dir, 'restored.raw');
    const restore = await cli('restore', '--repo', repo, '--point', p2.point, '--disk', 'virtio-disk0', '--out', out);
    expect(restore.code).toBe(0);
    expect((await fs.readFile(out)).equals(vm.snapshot('virtio-disk0'))).toBe(true);
    const again = await cli('restore', '--repo', repo, '--point', p2.point, '--disk', 'virtio-disk0', '--out', out);
    expectOneLineError(again, /already exists/);

    const ok = await cli('verify', '--repo', repo, '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, pointsChecked: 2 });

    // flip one byte of a chunk both points share (the first 256 KiB of the disk)
    const chunk = await findChunkFile(path.join(repo, 'chunks'));
    const bytes = await fs.readFile(chunk.file);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await fs.chmod(chunk.file, 0o600).catch(() => undefined);
    await fs.writeFile(chunk.file, bytes);
    const bad = await cli('verify', '--repo', repo, '--json');
    expect(bad.code).not.toBe(0);
    const report = JSON.parse(bad.stdout) as { ok: boolean; problems: Array<{ pointId: string; device: string; chunk: string; offset: number }> };
    expect(report.ok).toBe(false);
    const hits = report.problems.filter((p) => p.chunk === chunk.digest);
    expect(hits.length).toBeGreaterThanOrEqual(1);
    for (const h of hits) {
      expect([p1.point, p2.point]).toContain(h.pointId);
      expect(h.device).toBe('virtio-disk0');
      expect(typeof h.offset).toBe('number');
    }
    const human = await cli('verify', '--repo', repo);
    expect(human.code).not.toBe(0);
    expect(human.stdout).toMatch(/DAMAGED/);
  });

  test('backup --lock-days N: the point is written locked for N days; delete refuses it; points shows the lock', async () => {
    const before = Date.now();
    const r = await cli('backup', '--repo', repo, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir, '--lock-days', '3', '--json');
    expect([r.code, r.stderr]).toEqual([0, '']);
    const p = JSON.parse(r.stdout) as { point: string; lockedUntil: string };
    const lockedFor = Date.parse(p.lockedUntil) - before;
    expect(lockedFor).toBeGreaterThanOrEqual(3 * DAY_MS);
    expect(lockedFor).toBeLessThan(3 * DAY_MS + 120_000);
    expect((JSON.parse((await cli('show', '--repo', repo, '--point', p.point, '--json')).stdout) as { lockedUntil: string }).lockedUntil).toBe(p.lockedUntil);
    // a point by socket is the QMP method's (its manifest names none)
    expect((await cli('show', '--repo', repo, '--point', p.point)).stdout.split('\n')[0]).toMatch(/^point \S+ of vm web1, taken \S+, (crash|filesystem)-consistent, method qmp$/);
    expectOneLineError(await cli('points', 'delete', '--repo', repo, '--point', p.point, '--reason', 'tidy'), new RegExp(`locked until ${p.lockedUntil}`));
    const table = (await cli('points', '--repo', repo)).stdout.split('\n');
    expect(table[0]).toMatch(/LOCKED UNTIL +BEING READ$/);
    expect(table.find((l) => l.startsWith(p.point))).toMatch(new RegExp(`${p.lockedUntil} +-$`));
    // the lock came with the point: no lock change was recorded
    expect((await cli('audit', '--repo', repo)).stdout).not.toContain('lock-extend');
  });

  test.each([
    ['a bad --lock-days', ['backup', '--repo', 'REPO', '--qmp', 'QMP', '--vm', 'x', '--lock-days', 'two'], /--lock-days: 'two' is not a whole number/],
    ['backup with no such socket', ['backup', '--repo', 'REPO', '--qmp', '/nonexistent/qmp.sock', '--vm', 'x'], /qmp socket \/nonexistent\/qmp.sock/],
    ['backup into a directory that is not a repository', ['backup', '--repo', '/tmp', '--qmp', 'QMP', '--vm', 'x'], /not a repository|no repository|not found/i],
    ['restore of an unknown point', ['restore', '--repo', 'REPO', '--point', '20990101T000000Z-000000', '--disk', 'virtio-disk0', '--out', '/tmp/x.raw'], /20990101T000000Z-000000/],
    ['verify of an unknown point', ['verify', '--repo', 'REPO', '--point', 'nope'], /nope/],
    ['points of a missing repository', ['points', '--repo', '/nonexistent/repo'], /\/nonexistent\/repo/],
    ['init over an existing repository', ['repo', 'init', '--repo', 'REPO'], /already a repository/],
    ['a bad chunk size', ['repo', 'init', '--repo', '/tmp/olvm-never', '--chunk-size', '3M'], /chunk/i],
    ['a bad vm name', ['backup', '--repo', 'REPO', '--qmp', 'QMP', '--vm', '../etc'], /vm name/],
    ['a backup that names no vm', ['backup', '--repo', 'REPO'], /give --qmp and --vm, or --engine with --vm-id/],
    ['an engine backup missing its credentials', ['backup', '--repo', 'REPO', '--engine', 'https://engine.example/ovirt-engine', '--vm-id', 'x'], /--engine-user, --engine-password-file$/],
    ['a qmp-method engine backup without a host link', ['backup', '--repo', 'REPO', '--engine', 'https://engine.example/ovirt-engine', '--vm-id', 'x', '--method', 'qmp'], /by the qmp method \(with --qmp-dir or --hosts\) also needs --engine-user, --engine-password-file, --qmp-dir$/],
    ['an unknown --method', ['backup', '--repo', 'REPO', '--engine', 'https://e.example/ovirt-engine', '--engine-user', 'u@internal', '--engine-password-file', '/dev/null', '--vm-id', 'x', '--method', 'vddk'], /--method: 'vddk' is not one of auto, qmp, engine$/],
    ['an unknown --consistency', ['backup', '--repo', 'REPO', '--engine', 'https://e.example/ovirt-engine', '--engine-user', 'u@internal', '--engine-password-file', '/dev/null', '--vm-id', 'x', '--consistency', 'app'], /--consistency: 'app' is not one of auto, filesystem, crash$/],
    ['--method with a qmp socket', ['backup', '--repo', 'REPO', '--qmp', 'QMP', '--vm', 'x', '--method', 'engine'], /--method and --consistency apply to an engine backup/],
    ['a bad restore format', ['restore', '--repo', 'REPO', '--point', 'p', '--disk', 'd', '--out', '/tmp/y', '--format', 'vmdk'], /--format/],
  ])('%s: one clear line and a non-zero exit', async (_name, args, pattern) => {
    const r = await cli(...args.map((a) => (a === 'REPO' ? repo : a === 'QMP' ? vm.productQmp : a)));
    expectOneLineError(r, pattern);
  });

  test('backup into and restore from an encrypted repository with --passphrase-file (the passphrase is asked only there)', async () => {
    const enc = path.join(dir, 'encrypted');
    const passphraseFile = path.join(dir, 'enc-passphrase');
    await fs.writeFile(passphraseFile, 'backup passphrase\n', { mode: 0o600 });
    const r = await Repository.init(enc, { version: 2, chunkSize: 256 * 1024, encryption: 'aes-256-gcm', passphrase: 'backup passphrase', scrypt: { N: 1024 } });
    await r.close();
    const noPassphrase = await cli('backup', '--repo', enc, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir);
    expectOneLineError(noPassphrase, /no passphrase was given: give --passphrase-file FILE or set OLVM_BACKUP_REPO_PASSPHRASE/);
    const backup = await cli('backup', '--repo', enc, '--passphrase-file', passphraseFile, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', dir, '--json');
    expect([backup.code, backup.stderr]).toEqual([0, '']);
    const point = (JSON.parse(backup.stdout) as { point: string }).point;
    const out = path.join(dir, 'from-encrypted.raw');
    const restore = await cli('restore', '--repo', enc, '--passphrase-file', passphraseFile, '--point', point, '--disk', 'virtio-disk0', '--out', out);
    expect([restore.code, restore.stderr]).toEqual([0, '']);
    expect((await fs.readFile(out)).equals(vm.snapshot('virtio-disk0'))).toBe(true);
  });

  test('restore of an unknown disk names the disks the point has', async () => {
    const points = JSON.parse((await cli('points', '--repo', repo, '--json')).stdout) as Array<{ pointId: string }>;
    const r = await cli('restore', '--repo', repo, '--point', points[0]?.pointId ?? '', '--disk', 'sdz', '--out', path.join(dir, 'z.raw'));
    expectOneLineError(r, /sdz.*virtio-disk0/);
  });

  test('QEMU refusing a command is reported with its reason, and nothing is half-written', async () => {
    const before = JSON.parse((await cli('points', '--repo', repo, '--json')).stdout) as unknown[];
    // A scratch directory QEMU cannot use: the socket path is too long for a unix socket.
    const longDir = path.join(dir, 'x'.repeat(120));
    await fs.mkdir(longDir, { recursive: true });
    const r = await cli('backup', '--repo', repo, '--qmp', vm.productQmp, '--vm', 'web1', '--scratch', longDir);
    expectOneLineError(r, /backup of vm web1 failed/);
    const after = JSON.parse((await cli('points', '--repo', repo, '--json')).stdout) as unknown[];
    expect(after).toHaveLength(before.length);
    expect((await cli('verify', '--repo', repo, '--json')).stdout).toBeTruthy();
  });
});

describe('an encrypted repository on the command line (no VM: points written through the repository API)', () => {
  const PASSPHRASE = 'cli passphrase: correct horse';
  const WRONG = 'a wrong one, never to be shown';
  const NO_ENV = { OLVM_BACKUP_REPO_PASSPHRASE: undefined };
  let dir: string;
  let encrypted: string;
  let plain: string;
  let pointId: string;
  let plainPointId: string;
  let right: string;
  let wrong: string;

  const run = (env: Record<string, string | undefined>, ...args: string[]): Promise<CliRun> => runCli(args, 120_000, env);

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-cli-encrypted-'));
    encrypted = path.join(dir, 'encrypted');
    plain = path.join(dir, 'plain');
    const image = randomBytes(2 * CS);
    const e = await Repository.init(encrypted, { version: 2, chunkSize: CS, encryption: 'aes-256-gcm', passphrase: PASSPHRASE, scrypt: { N: 1024 }, workers: 1 });
    try {
      pointId = (await writePoint(e, { key: 'web1', name: 'web1' }, [{ device: 'virtio-disk0', image }])).pointId;
    } finally {
      await e.close();
    }
    const p = await Repository.init(plain, { chunkSize: CS, workers: 1 });
    try {
      plainPointId = (await writePoint(p, { key: 'web2', name: 'web2' }, [{ device: 'virtio-disk0', image }])).pointId;
    } finally {
      await p.close();
    }
    right = path.join(dir, 'passphrase');
    wrong = path.join(dir, 'wrong');
    await fs.writeFile(right, `${PASSPHRASE}\n`, { mode: 0o600 });
    await fs.writeFile(wrong, `${WRONG}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test.each([
    ['--passphrase-file', NO_ENV, (): string[] => ['--passphrase-file', right]],
    ['OLVM_BACKUP_REPO_PASSPHRASE', { OLVM_BACKUP_REPO_PASSPHRASE: PASSPHRASE }, (): string[] => []],
  ])('show, points and verify open it with the passphrase from %s', async (_way, env, flag) => {
    const show = await run(env, 'show', '--repo', encrypted, '--point', pointId, '--json', ...flag());
    expect([show.code, show.stderr]).toEqual([0, '']);
    // the sealed name and metadata are read back in the clear
    expect(JSON.parse(show.stdout)).toMatchObject({ pointId, vm: { key: 'web1', name: 'web1' } });
    const points = await run(env, 'points', '--repo', encrypted, '--json', ...flag());
    expect([points.code, points.stderr]).toEqual([0, '']);
    expect((JSON.parse(points.stdout) as Array<{ pointId: string; vm: { name: string } }>).map((p) => [p.pointId, p.vm.name])).toEqual([[pointId, 'web1']]);
    // verify repairs by default: it opens the repository for writing (repoOwner.ts)
    const verify = await run(env, 'verify', '--repo', encrypted, '--json', ...flag());
    expect([verify.code, verify.stderr]).toEqual([0, '']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, pointsChecked: 1, problems: [] });
  });

  test('a --passphrase-file that others may read works, with a warning', async () => {
    const loose = path.join(dir, 'loose');
    await fs.writeFile(loose, PASSPHRASE, { mode: 0o644 });
    await fs.chmod(loose, 0o644);
    const r = await run(NO_ENV, 'points', '--repo', encrypted, '--passphrase-file', loose, '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^olvm-backup: warning: --passphrase-file: .*loose is readable by group or others \(mode 644\): chmod 600 it\n$/);
  });

  test.each([
    ['show', ['show', '--point', 'POINT']],
    ['points', ['points']],
    ['verify', ['verify']],
    ['points lock', ['points', 'lock', '--point', 'POINT', '--until', '2099-01-01']],
  ])('%s: REPO_KEY_REQUIRED naming both ways without a passphrase, REPO_KEY_WRONG without the passphrase for a wrong one', async (_name, args) => {
    const argv = [...args.map((a) => (a === 'POINT' ? pointId : a)), '--repo', encrypted];
    expectOneLineError(await run(NO_ENV, ...argv), /: the repository is encrypted and no passphrase was given: give --passphrase-file FILE or set OLVM_BACKUP_REPO_PASSPHRASE$/);
    for (const [env, flag] of [
      [NO_ENV, ['--passphrase-file', wrong]],
      [{ OLVM_BACKUP_REPO_PASSPHRASE: WRONG }, []],
      // the file wins over the environment
      [{ OLVM_BACKUP_REPO_PASSPHRASE: PASSPHRASE }, ['--passphrase-file', wrong]],
    ] as const) {
      const r = await run(env, ...argv, ...flag);
      expectOneLineError(r, /: the passphrase opens none of the 1 key\(s\) of repository [0-9a-f-]{36}$/);
      expect(r.stderr + r.stdout).not.toContain(WRONG);
    }
    expectOneLineError(await run(NO_ENV, ...argv, '--passphrase-file', path.join(dir, 'absent')), /: --passphrase-file: cannot read .*absent \(ENOENT\)/);
  });

  test('the codes behind those messages: the passphrase is asked for only when the repository is encrypted', async () => {
    const noPassphrase = (): Promise<string> => readPassphrase({ env: {} });
    await expect(Repository.open(encrypted, { passphrase: noPassphrase })).rejects.toMatchObject({ code: 'REPO_KEY_REQUIRED' });
    await expect(Repository.open(encrypted, { passphrase: () => Promise.resolve(WRONG) })).rejects.toMatchObject({ code: 'REPO_KEY_WRONG' });
    let asked = 0;
    const r = await Repository.open(plain, {
      passphrase: () => {
        asked++;
        return Promise.reject(new Error('a plain repository must not ask'));
      },
    });
    await r.close();
    expect(asked).toBe(0);
  });

  test('repo init --encryption: made with the passphrase, opened with it; refused without one or with --format 1', async () => {
    const made = path.join(dir, 'made');
    const init = await run(NO_ENV, 'repo', 'init', '--repo', made, '--encryption', 'aes-256-gcm', '--passphrase-file', right, '--json');
    expect([init.code, init.stderr]).toEqual([0, '']);
    expect(JSON.parse(init.stdout)).toMatchObject({ format: 2, encrypted: true });
    expect(await fs.readdir(path.join(made, 'keys'))).toHaveLength(1);
    const points = await run(NO_ENV, 'points', '--repo', made, '--json', '--passphrase-file', right);
    expect([points.code, points.stdout.trim()]).toEqual([0, '[]']);
    const refused = await run(NO_ENV, 'points', '--repo', made, '--json', '--passphrase-file', wrong);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/passphrase opens none of the 1 key/);
    expect(refused.stderr).not.toContain(WRONG);
    const noPassphrase = await run(NO_ENV, 'repo', 'init', '--repo', path.join(dir, 'made2'), '--encryption', 'aes-256-gcm');
    expect(noPassphrase.code).toBe(1);
    expect(noPassphrase.stderr).toMatch(/needs the passphrase of its first key: give --passphrase-file FILE or set OLVM_BACKUP_REPO_PASSPHRASE/);
    await expect(fs.access(path.join(dir, 'made2', 'config.json'))).rejects.toThrow();
    const v1 = await run(NO_ENV, 'repo', 'init', '--repo', path.join(dir, 'made3'), '--encryption', 'aes-256-gcm', '--format', '1', '--passphrase-file', right);
    expect(v1.code).toBe(1);
    expect(v1.stderr).toMatch(/--encryption needs --format 2/);
    const plainInit = await run(NO_ENV, 'repo', 'init', '--repo', path.join(dir, 'made4'), '--json');
    expect(JSON.parse(plainInit.stdout)).toMatchObject({ encrypted: false });
  });

  test('a plain repository never asks: no passphrase needed, a given file is not even read', async () => {
    for (const flag of [[], ['--passphrase-file', path.join(dir, 'absent')]]) {
      const show = await run(NO_ENV, 'show', '--repo', plain, '--point', plainPointId, '--json', ...flag);
      expect([show.code, show.stderr]).toEqual([0, '']);
      expect(JSON.parse(show.stdout)).toMatchObject({ pointId: plainPointId, vm: { name: 'web2' } });
      const verify = await run(NO_ENV, 'verify', '--repo', plain, '--json', ...flag);
      expect([verify.code, verify.stderr]).toEqual([0, '']);
      expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, pointsChecked: 1 });
    }
  });
});

async function findChunkFile(chunksDir: string): Promise<{ file: string; digest: string }> {
  for (const a of (await fs.readdir(chunksDir)).sort()) {
    for (const b of (await fs.readdir(path.join(chunksDir, a))).sort()) {
      const files = await fs.readdir(path.join(chunksDir, a, b));
      const f = files.find((x) => /^[0-9a-f]{64}$/.test(x));
      if (f) return { file: path.join(chunksDir, a, b, f), digest: f };
    }
  }
  throw new Error('no chunk file found');
}
