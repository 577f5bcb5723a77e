import * as path from 'path';
import { engineVmBackup, type EngineVmBackupRequest, type EngineVmBackupResult } from '../../backend/src/backup';
import type { EngineClient } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';
import { LocalHost } from '../../backend/src/hosts';
import { readPointMeta, type Manifest, type Repository } from '../../backend/src/repository';
import type { EngineSim, SimVm } from '../engine-sim';
import { diskBytesNow, expectRestoresExact as expectPointExact, scribbleDisk, startEngineMethodStack, type EngineMethodStack } from '../helpers/engineMethodStack';
import { FakeGuestAgent } from '../helpers/fakeGuestAgent';

const MiB = 1 << 20;

/**
 * The engine method against the engine simulator's backup API on real QEMU: every point is
 * restored and compared byte for byte with the disk as it was when the point was taken.
 */
describe('engine method: backups through the engine backup API and imageio', () => {
  let stack: EngineMethodStack;
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;

  beforeAll(async () => {
    // cluster level 4.6: the engine's StartVmBackup (scratch disks live, volume bitmaps cold);
    // the hybrid (snapshot-based) mode of 4.7+ is engineMethodHybrid.test.ts's
    stack = await startEngineMethodStack('olvm-em-', '4.6');
    ({ dir, sim, repo, engine } = stack);
  });
  afterAll(async () => {
    await stack?.close();
  });

  function backup(vmId: string, extra: Partial<EngineVmBackupRequest> = {}): Promise<EngineVmBackupResult> {
    return engineVmBackup({ engine, vmId, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir, method: 'engine', ...extra });
  }

  /** A backup while the guest is idle: what each disk holds now is what the point must hold. */
  async function backupAndRemember(vm: SimVm, extra: Partial<EngineVmBackupRequest> = {}): Promise<EngineVmBackupResult> {
    const now = await diskBytesNow(sim, vm);
    const r = await backup(vm.id, extra);
    stack.expected.set(r.manifest.pointId, now);
    await expectEngineClean(vm.id);
    return r;
  }

  const expectRestoresExact = (m: Manifest): Promise<void> => expectPointExact(stack, m);

  /** Nothing of ours left in the engine: no backup short of succeeded/failed, no open transfer. */
  async function expectEngineClean(vmId: string): Promise<void> {
    const open = (await engine.listBackups(vmId)).filter((b) => b.phase !== 'succeeded' && b.phase !== 'failed');
    expect(open.map((b) => `${b.id}:${b.phase}`)).toEqual([]);
    const transfers = (await engine.listImageTransfers()).filter((t) => t.backupId !== undefined && !t.phase.startsWith('finished'));
    expect(transfers.map((t) => `${t.id}:${t.phase}`)).toEqual([]);
  }

  async function scribble(vm: SimVm, diskIndex: number, writes: number): Promise<void> {
    await scribbleDisk(sim, vm, vm.disks[diskIndex] as SimVm['disks'][number], writes);
  }

  const modes = (r: EngineVmBackupResult): string[] => r.manifest.disks.map((d) => `${d.mode}:${d.reason}`);

  test('a running vm: full then three incrementals of its qcow2 disk, its raw disk full each time (disk-not-incremental), all exact', async () => {
    const vm = await sim.addVm({ name: 'em01', disks: [{ sizeBytes: 24 * MiB, format: 'cow' }, { sizeBytes: 8 * MiB, format: 'raw' }], running: true });
    await scribble(vm, 0, 8);
    await scribble(vm, 1, 4);
    const seen: string[] = [];
    const first = await backupAndRemember(vm, { onEngineBackup: (r) => seen.push(`${r.backupId}:${r.finished}`) });
    expect(first.method).toBe('engine');
    expect(modes(first)).toEqual(['full:first-backup', 'full:first-backup']);
    expect(first.manifest.disks.map((d) => d.device)).toEqual(vm.disks.map((d) => d.deviceId));
    expect(first.manifest.disks.map((d) => d.format)).toEqual(['qcow2', 'raw']);
    const meta = readPointMeta(first.manifest);
    expect(meta.method).toBe('engine');
    const checkpoints = sim.backup.checkpoints(vm.id);
    expect(meta.engine?.checkpointId).toBe(checkpoints.at(-1)?.id);
    expect(first.manifest.disks.map((d) => d.bitmap)).toEqual([meta.engine?.checkpointId, '']);
    // the id was told before the request and again once the engine backup was finalized
    expect(seen).toEqual([`${meta.engine?.backupId}:false`, `${meta.engine?.backupId}:true`]);
    expect(first.manifest.vmDefinition?.content).toContain('em01');

    const points = [first];
    for (let i = 0; i < 3; i++) {
      await scribble(vm, 0, 5);
      await scribble(vm, 1, 2);
      const r = await backupAndRemember(vm);
      expect(modes(r)).toEqual(['incremental:incremental', 'full:disk-not-incremental']);
      // only dirty chunks of the qcow2 disk were read
      expect(r.manifest.disks[0]?.bytesRead).toBeLessThanOrEqual(5 * MiB);
      expect(r.manifest.disks[0]?.bytesRead).toBeGreaterThan(0);
      expect(r.manifest.parentPointId).toBe(points.at(-1)?.manifest.pointId);
      points.push(r);
    }
    for (const p of points) await expectRestoresExact(p.manifest);
    const ev = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === vm.id);
    expect(ev.at(-1)?.description).toMatch(/em01 \(engine method\) finished/);
  });

  test('a vm that is down is backed up cold under auto, never started, and incrementally the next time', async () => {
    const vm = await sim.addVm({ name: 'em02', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 6);
    await engine.stopVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 60_000 });
    const r1 = await backupAndRemember(vm, { method: 'auto' });
    expect(r1.method).toBe('engine');
    expect(r1.startedPaused).toBe(false);
    expect(sim.vmById(vm.id).status).toBe('down');
    expect(r1.manifest.consistency).toBe('crash');
    expect(readPointMeta(r1.manifest).consistencyReason).toMatch(/cold backup/);
    await engine.startVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['up'], { timeoutMs: 60_000 });
    await scribble(vm, 0, 3);
    await engine.stopVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 60_000 });
    const r2 = await backupAndRemember(vm);
    expect(modes(r2)).toEqual(['incremental:incremental']);
    expect(sim.vmById(vm.id).status).toBe('down');
    await expectRestoresExact(r1.manifest);
    await expectRestoresExact(r2.manifest);
  });

  test('qmp → engine → qmp: each switch is a full with method-changed, then incrementals; every point exact', async () => {
    const vm = await sim.addVm({ name: 'em03', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 6);
    const steps: Array<['qmp' | 'engine', string]> = [
      ['qmp', 'full:first-backup'],
      ['qmp', 'incremental:incremental'],
      ['engine', 'full:method-changed'],
      ['engine', 'incremental:incremental'],
      ['qmp', 'full:method-changed'],
      ['qmp', 'incremental:incremental'],
      ['engine', 'full:method-changed'],
    ];
    const made: Manifest[] = [];
    for (const [method, want] of steps) {
      await scribble(vm, 0, 3);
      const r = await backupAndRemember(vm, { method });
      expect([r.method, modes(r)[0]]).toEqual([method, want]);
      expect(readPointMeta(r.manifest).method).toBe(method);
      made.push(r.manifest);
    }
    for (const m of made) await expectRestoresExact(m);
  });

  test('a checkpoint the engine lost, invalidated or cannot redefine: a full with the reason, then incrementals again', async () => {
    const vm = await sim.addVm({ name: 'em04', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 4);
    const made: Manifest[] = [(await backupAndRemember(vm)).manifest];
    const cp = readPointMeta(made[0] as Manifest).engine?.checkpointId as string;
    await engine.connection.request({ method: 'DELETE', path: `/vms/${vm.id}/checkpoints/${cp}` });
    for (let i = 0; i < 100 && (await engine.getCheckpoint(vm.id, cp)); i++) await new Promise((r) => setTimeout(r, 100));
    await scribble(vm, 0, 2);
    let r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['full:checkpoint-missing']);
    made.push(r.manifest);
    await scribble(vm, 0, 2);
    r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['incremental:incremental']);
    made.push(r.manifest);

    sim.backup.invalidateCheckpoints(vm.id);
    await scribble(vm, 0, 2);
    r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['full:checkpoint-invalid']);
    made.push(r.manifest);
    await scribble(vm, 0, 2);
    r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['incremental:incremental']);
    made.push(r.manifest);

    // the engine still lists the checkpoint but its bitmap is gone from the disk: the engine
    // fails the incremental ("full backup is now needed") and a full is taken instead
    const last = readPointMeta(r.manifest).engine?.checkpointId as string;
    await sim.backup.dropCheckpointBitmap(vm.id, last, vm.disks[0]?.id as string);
    await scribble(vm, 0, 2);
    r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['full:checkpoint-missing']);
    expect(r.warnings.join('\n')).toMatch(/refused to back up from checkpoint/);
    made.push(r.manifest);
    await scribble(vm, 0, 2);
    r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['incremental:incremental']);
    made.push(r.manifest);
    for (const m of made) await expectRestoresExact(m);
  });

  test('imageio failing mid-copy (500, hang, truncated range): a clear error, no point, the engine left clean, the next backup incremental and exact', async () => {
    const vm = await sim.addVm({ name: 'em05', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 4);
    const good = await backupAndRemember(vm);
    const faults: Array<['error' | 'hang' | 'truncate', string, RegExp]> = [
      ['error', 'IMAGEIO_HTTP_ERROR', /imageio GET failed with 500/],
      ['hang', 'IMAGEIO_TIMEOUT', /timed out/],
      ['truncate', 'IMAGEIO_PROTOCOL_ERROR', /ended after \d+ of \d+ bytes/],
    ];
    for (const [kind, code, words] of faults) {
      await scribble(vm, 0, 3);
      const before = (await repo.listPoints({ vmKey: vm.id })).length;
      const refs: string[] = [];
      sim.backup.imageioFaultNext(kind);
      const err = (await backup(vm.id, { engineTimeouts: { imageioRequestMs: 2000 }, onEngineBackup: (r) => refs.push(`${r.finished}`) }).catch((e: unknown) => e)) as AppError;
      expect(err).toBeInstanceOf(AppError);
      expect(err.code).toBe(code);
      expect(err.message).toContain('em05');
      expect(err.message).toMatch(words);
      expect((await repo.listPoints({ vmKey: vm.id })).length).toBe(before);
      expect(refs).toEqual(['false', 'true']);
      await expectEngineClean(vm.id);
      const failed = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === vm.id).pop();
      expect(failed?.severity).toBe('error');
    }
    await scribble(vm, 0, 2);
    const next = await backupAndRemember(vm);
    expect(modes(next)).toEqual(['incremental:incremental']);
    expect(next.manifest.parentPointId).toBe(good.manifest.pointId);
    await expectRestoresExact(good.manifest);
    await expectRestoresExact(next.manifest);
  });

  test('the engine failing the backup: its words in the error, from the backup or, once it is gone (404), from its events', async () => {
    const vm = await sim.addVm({ name: 'em07', disks: [{ sizeBytes: 8 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 2);
    sim.backup.failNext('initializing');
    const failed = (await backup(vm.id).catch((e: unknown) => e)) as AppError;
    expect(failed.code).toBe('ENGINE_BACKUP_FAILED');
    expect(failed.message).toMatch(/em07.*failed.*simulated failure while initializing/);
    await expectEngineClean(vm.id);
    // the engine drops a failed backup at once: the wait sees 404 and reads the event log
    sim.backup.setCleanup({ failedMs: 0 });
    try {
      sim.backup.failNext('starting');
      const gone = (await backup(vm.id).catch((e: unknown) => e)) as AppError;
      expect(gone.code).toBe('ENGINE_BACKUP_FAILED');
      expect(gone.message).toMatch(/em07.*no longer knows backup .*simulated failure while starting/);
    } finally {
      sim.backup.setCleanup({ failedMs: 30 * 60_000 });
    }
    expect(await repo.listPoints({ vmKey: vm.id })).toEqual([]);
    await expectEngineClean(vm.id);
    const r = await backupAndRemember(vm);
    expect(modes(r)).toEqual(['full:first-backup']);
    await expectRestoresExact(r.manifest);
  });

  test('an aborted backup leaves nothing behind; consistency: filesystem is the engine’s require_consistency, crash cannot stop its freeze', async () => {
    const vm = await sim.addVm({ name: 'em06', disks: [{ sizeBytes: 16 * MiB, format: 'cow' }], running: true });
    await scribble(vm, 0, 4);
    const ctl = new AbortController();
    const err = (await backup(vm.id, { signal: ctl.signal, onProgress: (p) => p.bytesDone > 0 && ctl.abort() }).catch((e: unknown) => e)) as AppError;
    expect(err.code).toBe('BACKUP_ABORTED');
    expect(await repo.listPoints({ vmKey: vm.id })).toEqual([]);
    await expectEngineClean(vm.id);

    // no guest agent: the engine cannot freeze, and require_consistency makes that a failure
    const nc = (await backup(vm.id, { consistency: 'filesystem' }).catch((e: unknown) => e)) as AppError;
    expect(nc.code).toBe('BACKUP_NOT_CONSISTENT');
    expect(nc.message).toMatch(/em06.*freeze/);
    expect(await repo.listPoints({ vmKey: vm.id })).toEqual([]);
    await expectEngineClean(vm.id);

    const agent = await FakeGuestAgent.start(path.join(sim.qmpDir, `${vm.id}.qga`));
    try {
      const r = await backupAndRemember(vm, { consistency: 'filesystem' });
      expect(modes(r)).toEqual(['full:first-backup']);
      expect(r.manifest.consistency).toBe('filesystem');
      expect(agent.frozen).toBe(false);
      const freezes = (): number => agent.commands().filter((c) => c === 'guest-fsfreeze-freeze').length;
      expect(freezes()).toBe(1);
      await expectRestoresExact(r.manifest);
      // `crash`: the engine has no switch to skip its freeze; the point says what happened
      const c = await backupAndRemember(vm, { consistency: 'crash' });
      expect(c.manifest.consistency).toBe('crash');
      expect(readPointMeta(c.manifest).consistencyReason).toMatch(/no switch to skip the guest freeze/);
      expect(freezes()).toBe(2);
      const a = await backupAndRemember(vm, { consistency: 'auto' });
      expect(readPointMeta(a.manifest).consistencyReason).toMatch(/engine froze the guest if its agent answered/);
      await expectRestoresExact(a.manifest);
    } finally {
      await agent.stop();
    }
  });
});
