import { spawn } from 'child_process';
import { randomBytes, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup, settleEngineBackup, type EngineBackupRef } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { requireTools } from '../helpers/tools';

const MiB = 1 << 20;
const CHILD = path.resolve(__dirname, 'engineMethodChild.js');

/**
 * kill -9 of a process running an engine-method backup, once while the engine backup is `ready`
 * and once while an image transfer runs: settleEngineBackup (what the service runs at start-up
 * with the id the dead process recorded) finalizes the backup and ends the transfer, no half
 * point is left, and the next backup is incremental and exact. Both engine modes: hybrid
 * (cluster 4.7, the snapshot removed at finalize) and StartVmBackup (4.6, scratch disks).
 */
describe.each(['4.7', '4.6'])('engine method: a backup process killed mid-way (cluster level %s)', (level) => {
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;
  let vm: SimVm;

  beforeAll(async () => {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-emc-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), seed: false });
    sim.backup.setClusterVersion(level);
    sim.backup.setStepDelay(20);
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    vm = await sim.addVm({ name: 'crash01', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(6);
  });
  afterAll(async () => {
    await engine?.close();
    await repo?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function scribble(writes: number): Promise<void> {
    const d = vm.disks[0] as SimVm['disks'][number];
    for (let i = 0; i < writes; i++) {
      const len = randomInt(1, 64) * 4096;
      await sim.guestWrite(vm.id, d.id, randomInt(0, (d.provisionedSize - len) / 4096) * 4096, randomBytes(len));
    }
  }

  /** Runs the child backup and SIGKILLs it once `when` holds; returns the ref it reported. */
  async function killedWhen(when: (lines: Array<Record<string, unknown>>) => Promise<boolean>): Promise<EngineBackupRef> {
    const args = { baseUrl: sim.baseUrl, user: sim.users.admin.name, password: sim.users.admin.password, repoDir: repo.dir, vmId: vm.id, qmpDir: sim.qmpDir, scratchDir: dir };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Array<Record<string, unknown>> = [];
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
        lines.push(JSON.parse(out.slice(0, i)) as Record<string, unknown>);
        out = out.slice(i + 1);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(String(signal ?? code))));
    let ended: string | undefined;
    void exited.then((s) => (ended = s));
    const deadline = Date.now() + 60_000;
    try {
      while (!(await when(lines).catch(() => false))) {
        if (ended !== undefined) throw new Error(`the backup ended (${ended}) before the moment to kill it: ${err}`);
        if (Date.now() > deadline) throw new Error(`the moment to kill the backup did not come: ${JSON.stringify(lines)} ${err}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');
    const ref = lines.find((l) => l['ref'])?.['ref'] as (EngineBackupRef & { finished: boolean }) | undefined;
    if (!ref) throw new Error('the child reported no engine backup');
    expect(ref.finished).toBe(false);
    return { vmId: ref.vmId, backupId: ref.backupId };
  }

  async function openTransfersOf(backupId: string): Promise<string[]> {
    return (await engine.listImageTransfers()).filter((t) => t.backupId === backupId && !t.phase.startsWith('finished')).map((t) => t.phase);
  }

  async function backupExact(expectMode: string): Promise<void> {
    const d = vm.disks[0] as SimVm['disks'][number];
    const want = await sim.diskBytes(vm.id, d.id);
    const r = await engineVmBackup({ engine, vmId: vm.id, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir, method: 'engine', engineTimeouts: { imageioRequestMs: 10_000 } });
    expect(`${r.manifest.disks[0]?.mode}:${r.manifest.disks[0]?.reason}`).toBe(expectMode);
    expectSameBytes(await restoredBytes(repo, r.manifest.pointId, d.deviceId, path.join(dir, `r-${randomBytes(4).toString('hex')}.raw`)), want, 'after the crash');
  }

  test('killed while the engine backup is ready: settled, nothing left, the next backup incremental and exact', async () => {
    await backupExact('full:first-backup');
    await scribble(3);
    const points = (await repo.listPoints({ vmKey: vm.id })).length;
    // the transfer request hangs (held, never released), so the process is caught with the
    // backup ready and no transfer; killed only once the hang has caught it, or the hang would
    // be left armed for the next backup's request
    const caught = sim.holdNext({ method: 'POST', pathPrefix: '/imagetransfers' });
    let hanging = false;
    void caught.held.then(() => (hanging = true));
    const ref = await killedWhen((lines) => {
      const r = lines.find((l) => l['ref'])?.['ref'] as EngineBackupRef | undefined;
      return Promise.resolve(r !== undefined && hanging && sim.backup.phase(r.backupId) === 'ready');
    });
    expect(sim.backup.phase(ref.backupId)).toBe('ready');
    const said = await settleEngineBackup(engine, ref);
    expect(said).toMatch(/finalized \(succeeded\)/);
    expect(sim.backup.phase(ref.backupId)).toBe('succeeded');
    expect(await openTransfersOf(ref.backupId)).toEqual([]);
    expect((await repo.listPoints({ vmKey: vm.id })).length).toBe(points);
    // settling again is harmless
    expect(await settleEngineBackup(engine, ref)).toMatch(/already succeeded/);
    await backupExact('incremental:incremental');
  });

  test('killed while a transfer runs: the transfer is ended, the backup finalized, the next backup incremental and exact', async () => {
    await scribble(3);
    const points = (await repo.listPoints({ vmKey: vm.id })).length;
    // the first data read hangs: once the transfer is up, a moment later the process is stuck in it
    sim.backup.imageioFaultNext('hang');
    let upAt = 0;
    const ref = await killedWhen(async (lines) => {
      const r = lines.find((l) => l['ref'])?.['ref'] as EngineBackupRef | undefined;
      if (!upAt && r !== undefined && lines.some((l) => l['phase'] === 'copying') && (await openTransfersOf(r.backupId)).includes('transferring')) upAt = Date.now();
      return upAt > 0 && Date.now() - upAt > 1500;
    });
    expect(await openTransfersOf(ref.backupId)).toEqual(['transferring']);
    const said = await settleEngineBackup(engine, ref);
    expect(said).toMatch(/finalized \(succeeded\); ended 1 image transfer left open/);
    expect(await openTransfersOf(ref.backupId)).toEqual([]);
    expect(sim.backup.phase(ref.backupId)).toBe('succeeded');
    expect((await repo.listPoints({ vmKey: vm.id })).length).toBe(points);
    await scribble(2);
    await backupExact('incremental:incremental');
  });

  test('an engine backup id the engine never knew settles as gone', async () => {
    expect(await settleEngineBackup(engine, { vmId: vm.id, backupId: '00000000-0000-4000-8000-00000000dead' })).toMatch(/already gone/);
  });
});
