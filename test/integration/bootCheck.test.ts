/**
 * Boot check of restore points with real QEMU under TCG: the bootable fixture
 * (test/helpers/bootableDisk.ts) written as a point boots (console sign of life, screenshot,
 * record stored on the point); the same disk with its boot sector zeroed fails with the
 * firmware's reason; the VM never has a network device (query-pci); the repository's bytes are
 * the same afterwards and verify is clean; `olvm-backup boot-check` end to end.
 */
import { execFile, spawn } from 'child_process';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { QmpClient } from '../../backend/src/qmp';
import { BOOTCHECKS_DIR, bootCheckScreenshotPath, readBootCheck, type Manifest, type Repository } from '../../backend/src/repository';
import { bootCheck } from '../../backend/src/restore';
import { networkDevices } from '../../backend/src/restore/bootVm';
import { BOOT_MARKER, bootableDisk, disposeBootableDisk } from '../helpers/bootableDisk';
import { CLI_MAIN, runCli } from '../helpers/cli';
import { until } from '../helpers/until';
import { writeImagePoint } from '../helpers/exportFixture';
import { initRepo, V2 } from '../helpers/repoFormats';
import { requireTools } from '../helpers/tools';
import { waitForSockets } from '../helpers/waitForSockets';

requireTools('qemu-system-x86_64', 'qemu-img');
jest.setTimeout(240_000);

let tmp: string;
let work: string;
let repo: Repository;
let image: Buffer;
let good: Manifest;
let zeroed: Manifest;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bootcheck-test-'));
  // the checks' private directories go here, not into the shared temp dir other suites use
  work = path.join(tmp, 'work');
  await fs.mkdir(work);
  image = await fs.readFile(await bootableDisk());
  repo = await initRepo(path.join(tmp, 'repo'), V2);
  good = await writeImagePoint(repo, image);
  const broken = Buffer.from(image);
  broken.fill(0, 0, 512);
  zeroed = await writeImagePoint(repo, broken);
});
afterAll(async () => {
  await repo?.close();
  await fs.rm(tmp, { recursive: true, force: true });
  await disposeBootableDisk();
});

/** SHA-256 of every file of the repository but the boot-check records and leases. */
async function repoBytes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (rel === BOOTCHECKS_DIR || rel === 'leases' || rel === 'locks') continue;
      if (e.isDirectory()) await walk(p);
      else out.set(rel, createHash('sha256').update(await fs.readFile(p)).digest('hex'));
    }
  };
  await walk(dir);
  return out;
}

/** Width and height of a PNG (its IHDR), or of a binary PPM (P6) header. */
function imageSize(b: Buffer): { width: number; height: number } {
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) && b.toString('latin1', 12, 16) === 'IHDR') {
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(b.toString('latin1', 0, 64));
  if (!m) throw new Error(`not a png or ppm image (starts ${b.subarray(0, 8).toString('hex')})`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

describe('boot check', () => {
  test('the bootable point boots under tcg: sign of life on the console, a screenshot, no network device, the record stored; the repository is unchanged', async () => {
    const before = await repoBytes(repo.dir);
    const shot = path.join(tmp, 'good-shot');
    const r = await bootCheck({ repository: repo, pointId: good.pointId, accel: 'tcg', timeoutMs: 90_000, screenshot: shot, actor: 'test', workDir: work });
    expect(r).toMatchObject({ state: 'ok', accel: 'tcg', noNetworkDevice: true, disks: ['vda'], matchedLine: BOOT_MARKER });
    expect(r.reason).toBe('the console showed a sign of life');
    expect(r.durationMs).toBeGreaterThan(0);
    // a real image of the VGA screen
    expect(r.screenshot).toMatch(/good-shot\.(png|ppm)$/);
    const size = imageSize(await fs.readFile(r.screenshot as string));
    expect(size.width).toBeGreaterThanOrEqual(320);
    expect(size.height).toBeGreaterThanOrEqual(200);
    // stored on the point, screenshot beside it, byte-identical to the copy
    const stored = await readBootCheck(repo.dir, good.pointId);
    expect(stored).toEqual(r.record);
    expect(stored).toMatchObject({ pointId: good.pointId, state: 'ok', accel: 'tcg', noNetworkDevice: true, actor: 'test' });
    const storedShot = bootCheckScreenshotPath(repo.dir, stored!);
    expect((await fs.readFile(storedShot as string)).equals(await fs.readFile(r.screenshot as string))).toBe(true);
    // the guest wrote to its overlay only: every repository byte is the same, verify is clean
    expect(await repoBytes(repo.dir)).toEqual(before);
    const report = await repo.verify();
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(await repo.leases(good.pointId)).toEqual([]);
    // no QEMU, socket or directory of the check is left
    expect(await bootCheckDirs()).toEqual([]);
  });

  test('a point whose boot sector was zeroed fails with the firmware reason, quickly', async () => {
    const r = await bootCheck({ repository: repo, pointId: zeroed.pointId, accel: 'tcg', timeoutMs: 30_000, actor: 'test', workDir: work });
    expect(r.state).toBe('failed');
    expect(r.reason).toBe('the firmware or the kernel reported a boot failure');
    expect(r.matchedLine).toMatch(/not a bootable disk|No bootable device|Boot failed/);
    expect(r.noNetworkDevice).toBe(true);
    expect(await readBootCheck(repo.dir, zeroed.pointId)).toMatchObject({ state: 'failed', reason: r.reason, matchedLine: r.matchedLine });
    expect(await repo.leases(zeroed.pointId)).toEqual([]);
  });

  test('a guest that never shows the expected line times out, with its console and a screenshot kept', async () => {
    const r = await bootCheck({ repository: repo, pointId: good.pointId, accel: 'tcg', timeoutMs: 12_000, expect: /never-printed/, actor: 'test', workDir: work });
    expect(r).toMatchObject({ state: 'timeout', matchedLine: null, reason: 'no sign of life within 12 s (expected never-printed)' });
    expect(r.consoleTail).toContain(BOOT_MARKER);
    expect(r.record.screenshot).toMatch(new RegExp(`^${good.pointId}\\.(png|ppm)$`));
  });

  test('a boot check stopped before its verdict (a cancelled job) kills its VM, records nothing and releases the point', async () => {
    const before = await readBootCheck(repo.dir, good.pointId);
    const stop = new AbortController();
    const t = setTimeout(() => stop.abort(new Error('cancelled by test')), 1500);
    try {
      const err = await bootCheck({ repository: repo, pointId: good.pointId, accel: 'tcg', timeoutMs: 60_000, expect: /never-printed/, actor: 'test', signal: stop.signal, workDir: work }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ABORTED', message: 'the boot check was stopped before a verdict' });
    } finally {
      clearTimeout(t);
    }
    expect(await readBootCheck(repo.dir, good.pointId)).toEqual(before);
    expect(await repo.leases(good.pointId)).toEqual([]);
    expect(await bootCheckDirs()).toEqual([]);
  });

  test('accel auto boots it too: kvm where /dev/kvm is usable, tcg otherwise or when this host\'s kvm cannot run the guest', async () => {
    const r = await bootCheck({ repository: repo, pointId: good.pointId, timeoutMs: 90_000, actor: 'test', workDir: work });
    expect(r).toMatchObject({ state: 'ok', matchedLine: BOOT_MARKER, noNetworkDevice: true });
    expect(['kvm', 'tcg']).toContain(r.accel);
  });

  test('the network check sees a NIC when a VM has one (what proves the boot check VM had none)', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'nic-'));
    const sock = path.join(dir, 'qmp.sock');
    const child = spawn('qemu-system-x86_64', ['-M', 'q35', '-accel', 'tcg', '-S', '-nodefaults', '-display', 'none', '-nic', 'user,model=virtio-net-pci', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    try {
      await waitForSockets([sock], () => (child.exitCode !== null ? `exit ${child.exitCode}` : undefined), 30_000);
      const qmp = await QmpClient.connectUnix(sock);
      try {
        const nics = networkDevices(await qmp.execute('query-pci', {}));
        expect(nics).toHaveLength(1);
      } finally {
        await qmp.close();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('deleting the point removes its boot-check record and screenshot', async () => {
    const m = await writeImagePoint(repo, image.subarray(0, 1 << 20));
    // a check that cannot boot (1 MiB: the partition is cut) still leaves a record
    await bootCheck({ repository: repo, pointId: m.pointId, accel: 'tcg', timeoutMs: 5_000, actor: 'test', workDir: work });
    const rec = await readBootCheck(repo.dir, m.pointId);
    expect(rec).not.toBeNull();
    await repo.deletePoint(m.pointId, { reason: 'test', actor: 'test' });
    expect(await readBootCheck(repo.dir, m.pointId)).toBeNull();
    expect((await fs.readdir(path.join(repo.dir, BOOTCHECKS_DIR))).filter((n) => n.startsWith(m.pointId))).toEqual([]);
  });
});

describe('olvm-backup boot-check', () => {
  test('exit 0 and the result as JSON for the bootable point; exit 1 with the reason for the zeroed one', async () => {
    const shot = path.join(tmp, 'cli-shot.png');
    const ok = await runCli(['boot-check', '--repo', repo.dir, '--point', good.pointId, '--accel', 'tcg', '--timeout', '90', '--screenshot', shot, '--json'], 180_000);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const j = JSON.parse(ok.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ pointId: good.pointId, state: 'ok', accel: 'tcg', noNetworkDevice: true, screenshot: shot, matchedLine: BOOT_MARKER });
    expect(imageSize(await fs.readFile(shot)).width).toBeGreaterThan(0);
    const bad = await runCli(['boot-check', '--repo', repo.dir, '--point', zeroed.pointId, '--accel', 'tcg', '--timeout', '30', '--expect', 'never-printed'], 120_000);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^point ${zeroed.pointId}: failed after [0-9.]+ s \\(tcg, no network device: yes\\): the firmware or the kernel reported a boot failure: .*(bootable|Boot failed)`));
    const usage = await runCli(['boot-check', '--repo', repo.dir, '--point', good.pointId, '--timeout', 'soon']);
    expect(usage).toMatchObject({ code: 1, stderr: "olvm-backup: --timeout must be a number of seconds from 1 to 3600, not 'soon'\n" });
  });
  test('stopped by SIGTERM it kills its VM and releases the point; killed by SIGKILL, its VM dies with it', async () => {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const cli = spawn(process.execPath, [CLI_MAIN, 'boot-check', '--repo', repo.dir, '--point', good.pointId, '--accel', 'tcg', '--timeout', '120', '--expect', 'never-printed'], { stdio: 'ignore', env: { ...process.env, TMPDIR: work } });
      const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
      try {
        const qemu = await until(`the boot check's qemu (${signal})`, () => childQemu(cli.pid ?? -1), 60_000);
        const privateDirs = await bootCheckDirs();
        cli.kill(signal);
        const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
        expect(code).not.toBe('hung');
        await until(`qemu ${qemu} to end after ${signal}`, () => Promise.resolve(alive(qemu) ? undefined : true), 10_000);
        if (signal === 'SIGTERM') {
          expect(code).toBe(1);
          expect(await repo.leases(good.pointId)).toEqual([]);
          expect(await bootCheckDirs()).toEqual([]);
        } else {
          // nothing of ours ran after SIGKILL: its private directory stays in the temp dir
          for (const d of privateDirs) await fs.rm(path.join(work, d), { recursive: true, force: true });
        }
      } finally {
        if (cli.exitCode === null) cli.kill('SIGKILL');
      }
    }
  }, 180_000);
});

/** The qemu-system process the CLI `pid` started, if any yet. */
async function childQemu(pid: number): Promise<number | undefined> {
  const out = await new Promise<string>((resolve) => execFile('pgrep', ['-P', String(pid), '-f', 'qemu-system'], (_err, stdout) => resolve(stdout)));
  const first = out.split('\n').find((l) => l.trim() !== '');
  return first ? Number(first) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function bootCheckDirs(): Promise<string[]> {
  return (await fs.readdir(work)).filter((n) => n.startsWith('olvm-bootcheck-'));
}
