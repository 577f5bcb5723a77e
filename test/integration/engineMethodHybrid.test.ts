import * as path from 'path';
import { engineVmBackup, type EngineVmBackupResult } from '../../backend/src/backup';
import type { EngineClient } from '../../backend/src/engine';
import type { AppError } from '../../backend/src/errors';
import { LocalHost } from '../../backend/src/hosts';
import { readPointMeta, type Manifest, type Repository } from '../../backend/src/repository';
import type { EngineSim, SimVm } from '../engine-sim';
import { diskBytesNow, expectRestoresExact, scribbleDisk, startEngineMethodStack, type EngineMethodStack } from '../helpers/engineMethodStack';
import { FakeGuestAgent } from '../helpers/fakeGuestAgent';

const MiB = 1 << 20;

/**
 * The engine method on a cluster at level 4.7, where the engine takes hybrid (snapshot-based)
 * backups (reference §4.4): the backup links a snapshot, the transfers read below it, and
 * finalize removes it before `succeeded`.
 */
describe('engine method: hybrid (snapshot-based) backups on cluster level 4.7', () => {
  let stack: EngineMethodStack;
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;

  beforeAll(async () => {
    stack = await startEngineMethodStack('olvm-emh-', '4.7');
    ({ dir, sim, repo, engine } = stack);
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function scribble(vm: SimVm, writes: number): Promise<void> {
    for (const d of vm.disks) await scribbleDisk(sim, vm, d, writes);
  }

  async function backup(vm: SimVm): Promise<EngineVmBackupResult> {
    const now = await diskBytesNow(sim, vm);
    const r = await engineVmBackup({ engine, vmId: vm.id, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir, method: 'engine' });
    stack.expected.set(r.manifest.pointId, now);
    const backupId = readPointMeta(r.manifest).engine?.backupId as string;
    const b = await engine.getBackup(vm.id, backupId);
    expect(b.phase).toBe('succeeded');
    expect(b.snapshotId).toBeDefined(); // a hybrid backup
    const open = (await engine.listBackups(vm.id)).filter((x) => x.phase !== 'succeeded' && x.phase !== 'failed');
    expect(open).toEqual([]);
    return r;
  }

  const expectExact = (m: Manifest): Promise<void> => expectRestoresExact(stack, m);

  test('a running vm: full, then incrementals through the snapshot; the raw disk full each time; all exact', async () => {
    const vm = await sim.addVm({ name: 'hy01', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }, { sizeBytes: 8 * MiB, format: 'raw' }], running: true });
    await scribble(vm, 4);
    const made: EngineVmBackupResult[] = [await backup(vm)];
    expect(made[0]?.manifest.disks.map((d) => d.reason)).toEqual(['first-backup', 'first-backup']);
    for (let i = 0; i < 2; i++) {
      await scribble(vm, 3);
      const r = await backup(vm);
      expect(r.manifest.disks.map((d) => `${d.mode}:${d.reason}`)).toEqual(['incremental:incremental', 'full:disk-not-incremental']);
      made.push(r);
    }
    for (const r of made) await expectExact(r.manifest);
  });

  test('consistency filesystem: StartVmBackup (legacy=true), since a hybrid backup ignores require_consistency', async () => {
    const vm = await sim.addVm({ name: 'hy03', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    const req = { engine, vmId: vm.id, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir, method: 'engine' as const, consistency: 'filesystem' as const };
    // no guest agent: no freeze, so no point
    const err = (await engineVmBackup(req).catch((e: unknown) => e)) as AppError;
    expect(err.code).toBe('BACKUP_NOT_CONSISTENT');
    expect(await repo.listPoints({ vmKey: vm.id })).toEqual([]);
    const agent = await FakeGuestAgent.start(path.join(sim.qmpDir, `${vm.id}.qga`));
    try {
      const r = await engineVmBackup(req);
      expect(r.manifest.consistency).toBe('filesystem');
      const b = await engine.getBackup(vm.id, readPointMeta(r.manifest).engine?.backupId as string);
      expect(b.snapshotId).toBeUndefined(); // not hybrid
      expect(agent.commands().filter((c) => c === 'guest-fsfreeze-freeze')).toHaveLength(1);
    } finally {
      await agent.stop();
    }
    expect((await engine.listBackups(vm.id)).filter((x) => x.phase !== 'succeeded' && x.phase !== 'failed')).toEqual([]);
  });

  test('a vm that is down: cold hybrid backups, full then incremental, exact', async () => {
    const vm = await sim.addVm({ name: 'hy02', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 4);
    await engine.stopVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 60_000 });
    const first = await backup(vm);
    await engine.startVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['up'], { timeoutMs: 60_000 });
    await scribble(vm, 3);
    await engine.stopVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 60_000 });
    const second = await backup(vm);
    expect(second.manifest.disks.map((d) => `${d.mode}:${d.reason}`)).toEqual(['incremental:incremental']);
    await expectExact(first.manifest);
    await expectExact(second.manifest);
  });
});
