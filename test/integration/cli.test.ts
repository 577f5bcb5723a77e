import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestVm } from '../helpers/qemuVm';
import { runCli, type CliRun } from '../helpers/cli';

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
    const init = await cli('repo', 'init', '--repo', repo, '--chunk-size', '256K');
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
    ['an engine backup missing its credentials', ['backup', '--repo', 'REPO', '--engine', 'https://engine.example/ovirt-engine', '--vm-id', 'x'], /--engine-user, --engine-password-file, --qmp-dir/],
    ['a bad restore format', ['restore', '--repo', 'REPO', '--point', 'p', '--disk', 'd', '--out', '/tmp/y', '--format', 'vmdk'], /--format/],
  ])('%s: one clear line and a non-zero exit', async (_name, args, pattern) => {
    const r = await cli(...args.map((a) => (a === 'REPO' ? repo : a === 'QMP' ? vm.productQmp : a)));
    expectOneLineError(r, pattern);
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
