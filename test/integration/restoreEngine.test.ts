import { createHash, randomBytes, randomUUID } from 'crypto';
import { closeSync, existsSync, openSync, promises as fs, readdirSync, writeSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';
import { LocalHost } from '../../backend/src/hosts';
import { Repository, type Manifest } from '../../backend/src/repository';
import { executeRestore, openPoint, type ExecuteDeps, type PointSource, type RestoreProgress, type RestoreResult } from '../../backend/src/restore';
import { planRestore, pointDataBytes, readInventory, type PlannedDisk, type RestorePlan } from '../../backend/src/restore/plan';
import { dataRanges } from '../../backend/src/restore/sparse';
import { EngineSim } from '../engine-sim';
import { expectSameBytes } from '../helpers/backupFixture';

const MiB = 1 << 20;

/**
 * Restore into the engine simulator (real QEMU VMs, TLS, its imageio endpoint and proxy):
 * restore points made by the engine-aware backup of web01 (a qcow2 and a raw disk), restored
 * through executeRestore from plans built here by hand (the planner has its own tests).
 */
describe('restore into the engine (simulator, real QEMU)', () => {
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;
  let incremental: Manifest;
  /** Guest-visible bytes of web01's disks (by device) right before the incremental backup. */
  const atIncremental = new Map<string, Buffer>();
  let storageDomain: { id: string; name: string };
  let cluster: { id: string; name: string };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-restore-engine-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    const web = sim.vmByName('web01');
    const backup = (): ReturnType<typeof engineVmBackup> =>
      engineVmBackup({ engine, vmId: web.id, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: dir });
    await backup();
    for (const [i, d] of web.disks.entries()) {
      await sim.guestWrite(web.id, d.id, (5 + i) * MiB + 4096, randomBytes(MiB + 8192));
      await sim.guestWrite(web.id, d.id, 20 * MiB, randomBytes(64 * 1024));
    }
    for (const d of web.disks) atIncremental.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    incremental = (await backup()).manifest;
    expect(incremental.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    const sd = (await engine.listStorageDomains())[0];
    const cl = (await engine.listClusters())[0];
    if (!sd || !cl) throw new Error('the simulator has no storage domain or cluster');
    storageDomain = { id: sd.id, name: sd.name };
    cluster = { id: cl.id, name: cl.name };
  });

  afterAll(async () => {
    await engine?.close();
    await repo?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** The executor on a point opened (and released) as the restore job opens it. */
  async function withPoint<T>(pointId: string, fn: (point: PointSource) => Promise<T>): Promise<T> {
    const point = await openPoint(repo, pointId, 'restore', 'restoreEngine test');
    try {
      return await fn(point);
    } finally {
      await point.release();
    }
  }
  const restoreWith = (plan: RestorePlan, deps: Omit<ExecuteDeps, 'engine' | 'point'>): Promise<RestoreResult> => withPoint(plan.pointId, (point) => executeRestore(plan, { engine, point, ...deps }));

  const timeouts: ExecuteDeps['timeouts'] = { diskReadyMs: 30_000, transferPhaseMs: 30_000, imageioRequestMs: 30_000, cleanupMs: 30_000 };

  /** What the engine holds, to prove a failed restore left nothing behind. */
  async function engineState(): Promise<{ disks: string[]; vms: string[]; transfers: string[] }> {
    const [disks, vms, transfers] = await Promise.all([engine.listDisks(), engine.listVms(), engine.listImageTransfers()]);
    return { disks: disks.map((d) => d.id).sort(), vms: vms.map((v) => v.id).sort(), transfers: transfers.map((t) => t.id) };
  }

  async function newTransfersOf(before: string[]): Promise<Array<{ id: string; phase: string; direction: string | undefined }>> {
    return (await engine.listImageTransfers()).filter((t) => !before.includes(t.id)).map((t) => ({ id: t.id, phase: t.phase, direction: t.direction }));
  }

  test('the incremental point as a new vm: new id, new MACs, both disks named and sized as planned, bytes identical', async () => {
    const web = sim.vmByName('web01');
    const plan = planFor(incremental, { mode: 'vm', name: 'web01-restored', storageDomain, cluster });
    const phases: string[] = [];
    const result = await restoreWith(plan, { timeouts, onProgress: (p: RestoreProgress) => phases.at(-1) !== p.phase && phases.push(p.phase) });

    expect(phases).toEqual(['creating-disks', 'uploading', 'finalizing', 'uploading', 'finalizing', 'verifying', 'creating-vm', 'done']);
    expect(result.vmId).not.toBeNull();
    expect(result.vmId).not.toBe(web.id);
    expect(result.vmName).toBe('web01-restored');
    const vm = sim.vmById(result.vmId as string);
    expect(vm.status).toBe('down');
    expect(vm.disks.map((d) => d.id).sort()).toEqual(plan.disks.map((d) => d.diskId).sort());
    for (const pd of plan.disks) {
      const disk = vm.disks.find((d) => d.id === pd.diskId);
      const source = web.disks.find((d) => d.deviceId === pd.device);
      expect(disk?.alias).toBe(pd.name);
      expect(disk?.provisionedSize).toBe(source?.provisionedSize);
      expect(disk?.format).toBe(source?.format);
      const expected = atIncremental.get(pd.device) as Buffer;
      expectSameBytes(await sim.diskBytes(vm.id, pd.diskId), expected, `restored ${pd.name}`);
      const r = result.disks.find((d) => d.device === pd.device);
      expect(r).toMatchObject({ diskId: pd.diskId, name: pd.name, verified: true, sha256: sha256(expected) });
      // zero ranges went as zero requests: exactly the non-zero 64 KiB blocks were sent as data
      const up = result.uploads.find((u) => u.device === pd.device);
      const nonZero = dataRanges(expected).reduce((n, [s, e]) => n + e - s, 0);
      expect(up).toMatchObject({ dataBytes: nonZero, zeroBytes: expected.length - nonZero });
      expect(up?.zeroRequests).toBeGreaterThan(0);
    }
    const got = await engine.getVm(vm.id, { withNics: true });
    expect(got.description).toBe(`Restored by olvm-backup from web01 at ${incremental.createdAt}`);
    const sourceMacs = (await engine.listVmNics(web.id)).map((n) => n.mac);
    const newMacs = (got.nics ?? []).map((n) => n.mac);
    expect(newMacs).toHaveLength(sourceMacs.length);
    for (const mac of newMacs) expect(sourceMacs).not.toContain(mac);
    const transfers = await engine.listImageTransfers();
    expect(transfers.every((t) => t.phase.startsWith('finished_'))).toBe(true);

    // the restored VM runs (paused: QEMU opens both disks) and its disks still read the same
    await engine.startVm(vm.id, { pause: true });
    await engine.waitForVmStatus(vm.id, ['paused'], { timeoutMs: 60_000 });
    for (const pd of plan.disks) expectSameBytes(await sim.diskBytes(vm.id, pd.diskId), atIncremental.get(pd.device) as Buffer, `${pd.name} in the running vm`);
    await engine.stopVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 60_000 });
  });

  test('a plan from the real planner (inventory read from the engine, OVF rewritten by it) restores the same way', async () => {
    const web = sim.vmByName('web01');
    const plan = planRestore({
      manifest: incremental,
      dataBytes: await withPoint(incremental.pointId, (point) => pointDataBytes(point)),
      request: { pointId: incremental.pointId, mode: 'vm', vmName: 'web01-planned' },
      inventory: await readInventory(engine),
    });
    expect(plan.problems.filter((p) => p.severity === 'error')).toEqual([]);
    const result = await restoreWith(plan, { timeouts });
    const vm = sim.vmById(result.vmId as string);
    expect(vm.name).toBe('web01-planned');
    expect(vm.disks.map((d) => d.id).sort()).toEqual(plan.disks.map((d) => d.diskId).sort());
    for (const pd of plan.disks) {
      expectSameBytes(await sim.diskBytes(vm.id, pd.diskId), atIncremental.get(pd.device) as Buffer, `planned ${pd.name}`);
      expect(vm.disks.find((d) => d.id === pd.diskId)?.alias).toBe(pd.name);
    }
    expect(result.disks.every((d) => d.verified)).toBe(true);
    expect(result.warnings).toEqual([]);
    const macs = (await engine.listVmNics(vm.id)).map((n) => n.mac);
    for (const mac of (await engine.listVmNics(web.id)).map((n) => n.mac)) expect(macs).not.toContain(mac);
  });

  test('disks only: the raw disk restored beside db01 and attached to it', async () => {
    const db = sim.vmByName('db01');
    const raw = incremental.disks.find((d) => d.format === 'raw');
    if (!raw) throw new Error('no raw disk in the point');
    const plan = planFor(incremental, { mode: 'disks', attachToVmId: db.id, storageDomain, cluster, devices: [raw.device], useProxy: true });
    const result = await restoreWith(plan, { timeouts });
    expect(result.vmId).toBeNull();
    const pd = plan.disks[0] as PlannedDisk;
    const attached = (await engine.listDiskAttachments(db.id)).find((a) => a.diskId === pd.diskId);
    expect(attached).toMatchObject({ active: true, bootable: false, interface: 'virtio' });
    expect(sim.vmById(db.id).disks.map((d) => d.id)).toContain(pd.diskId);
    expectSameBytes(await sim.diskBytes(db.id, pd.diskId), atIncremental.get(raw.device) as Buffer, 'disk attached to db01');
    expect(result.disks[0]?.verified).toBe(true);
  });

  test('an imageio data endpoint that stops answering half-way: the restore says why and leaves the engine as it was', async () => {
    const before = await engineState();
    const plan = planFor(incremental, { mode: 'vm', name: 'web01-hang', storageDomain, cluster });
    let armed = false;
    const err = await restoreWith(plan, {
      timeouts: { ...timeouts, imageioRequestMs: 3000 },
      onProgress: (p) => {
        // after 16 MiB of the first disk, the next PUT never gets an answer
        if (!armed && p.phase === 'uploading' && p.bytesDone >= 16 * MiB) {
          armed = true;
          sim.hangNext({ method: 'PUT', pathPrefix: '/images/' });
        }
      },
    }).catch((e: unknown) => e);
    expect(armed).toBe(true);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toMatch(/upload of disk web01-hang_Disk1 failed at \d+(\.\d)? MiB: imageio PUT timed out after 3000 ms/);
    expect((err as AppError).message).toContain('everything it created in the engine was removed');
    const after = await engineState();
    expect(after.disks).toEqual(before.disks);
    expect(after.vms).toEqual(before.vms);
    expect(await newTransfersOf(before.transfers)).toEqual([expect.objectContaining({ direction: 'upload', phase: 'finished_failure' })]);
  });

  test('an imageio error answer through the proxy fails the restore the same clean way', async () => {
    const before = await engineState();
    const plan = planFor(incremental, { mode: 'vm', name: 'web01-fail', storageDomain, cluster, useProxy: true });
    sim.failNext({ method: 'PATCH', pathPrefix: '/images/', status: 500 });
    const err = await restoreWith(plan, { timeouts }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toMatch(/upload of disk web01-fail_Disk1 failed at \d+(\.\d)? MiB: imageio PATCH zero failed with 500/);
    const after = await engineState();
    expect(after.disks).toEqual(before.disks);
    expect(after.vms).toEqual(before.vms);
    expect((await newTransfersOf(before.transfers)).map((t) => t.phase)).toEqual(['finished_failure']);
  });

  test('aborted through its AbortSignal mid-upload: rejected as aborted, nothing left in the engine', async () => {
    const before = await engineState();
    const plan = planFor(incremental, { mode: 'vm', name: 'web01-abort', storageDomain, cluster });
    const ctl = new AbortController();
    const err = await restoreWith(plan, {
      timeouts,
      signal: ctl.signal,
      // abort during the second disk, when the first is already uploaded and finalized
      onProgress: (p) => p.phase === 'uploading' && p.disk === plan.disks[1]?.name && p.bytesDone > (plan.disks[0]?.provisionedSize ?? 0) + MiB && ctl.abort(),
    }).catch((e: unknown) => e);
    expect(ctl.signal.aborted).toBe(true);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toMatch(/was aborted: upload of disk web01-abort_Disk2 failed at [\d.]+ MiB: imageio (PUT|PATCH zero) aborted - the restore was aborted/);
    expect((err as AppError).details).toMatchObject({ aborted: true, leftovers: [] });
    const after = await engineState();
    expect(after.disks).toEqual(before.disks);
    expect(after.vms).toEqual(before.vms);
    const made = await newTransfersOf(before.transfers);
    expect(made.map((t) => t.phase).sort()).toEqual(['finished_failure', 'finished_success']);
  });

  test('a disk that reads back different from the point fails the verification, and the restore is undone', async () => {
    const before = await engineState();
    const raw = incremental.disks.find((d) => d.format === 'raw');
    if (!raw) throw new Error('no raw disk in the point');
    const plan = planFor(incremental, { mode: 'disks', storageDomain, cluster, devices: [raw.device] });
    const diskId = (plan.disks[0] as PlannedDisk).diskId;
    let damaged = false;
    const err = await restoreWith(plan, {
      timeouts,
      onProgress: (p) => {
        // between the upload and the read-back, one byte of the (raw) image changes behind the engine's back
        if (p.phase !== 'verifying' || damaged) return;
        damaged = true;
        const fd = openSync(imageFile(path.join(dir, 'sim', 'storage'), diskId), 'r+');
        writeSync(fd, Buffer.from([0x5a]), 0, 1, 7 * MiB + 3);
        closeSync(fd);
      },
    }).catch((e: unknown) => e);
    expect(damaged).toBe(true);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toMatch(/verification of disk .*-restored: the disk in the engine \(sha256 [0-9a-f]{16}…\) differs from the point/);
    const after = await engineState();
    expect(after.disks).toEqual(before.disks);
    expect((await newTransfersOf(before.transfers)).map((t) => `${t.direction} ${t.phase}`).sort()).toEqual(['download finished_success', 'upload finished_success']);
  });

  test('a failure once the vm exists (attaching a disk the engine did not attach) removes the vm and every disk', async () => {
    const before = await engineState();
    const plan = planFor(incremental, { mode: 'vm', name: 'web01-attach', storageDomain, cluster });
    const second = plan.disks[1] as PlannedDisk;
    if (!plan.vm) throw new Error('no vm in the plan');
    // the OVF names another id for the second disk: the engine cannot attach it, the executor must
    plan.vm.ovf = plan.vm.ovf.split(second.diskId).join(randomUUID());
    sim.failNext({ method: 'POST', pathPrefix: '/vms/', status: 500 });
    const logs: string[] = [];
    const err = await restoreWith(plan, { timeouts, log: (level, msg) => logs.push(`${level} ${msg}`) }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toMatch(/failed: creating vm web01-attach from the ovf: engine POST \/ovirt-engine\/api\/vms\/[0-9a-f-]+\/diskattachments failed with 500/);
    expect(logs).toContain(`warn the engine did not attach ${second.name} from the ovf; attached explicitly`);
    expect(logs).toContain('info clean-up: removed vm web01-attach');
    const after = await engineState();
    expect(after.vms).toEqual(before.vms);
    expect(after.disks).toEqual(before.disks);
  });

  test('a plan with errors is refused before anything is written', async () => {
    const before = await engineState();
    const plan = planFor(incremental, { mode: 'vm', name: 'web01', storageDomain, cluster });
    plan.ok = false;
    plan.problems.push({ severity: 'error', code: 'VM_NAME_EXISTS', message: 'a vm named web01 exists' });
    const err = await restoreWith(plan, { timeouts }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('RESTORE_FAILED');
    expect((err as AppError).message).toContain('a vm named web01 exists');
    expect(await engineState()).toEqual(before);
  });
});

/** The image file of a disk in the simulator's file domains (`<sd>/images/<disk id>/<image id>`). */
function imageFile(storage: string, diskId: string): string {
  for (const sd of readdirSync(storage)) {
    const d = path.join(storage, sd, 'images', diskId);
    if (existsSync(d)) return path.join(d, readdirSync(d)[0] ?? '');
  }
  throw new Error(`no image of disk ${diskId} under ${storage}`);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * A restore plan filled from the manifest the way the planner would for a copy beside the
 * original: new disk and image ids, names from the new VM name, the OVF rewritten by plain
 * replacement (ids, the VM name, MACs cleared).
 */
function planFor(
  m: Manifest,
  o: {
    mode: 'vm' | 'disks';
    name?: string;
    attachToVmId?: string;
    devices?: string[];
    useProxy?: boolean;
    storageDomain: { id: string; name: string };
    cluster: { id: string; name: string };
  },
): RestorePlan {
  let ovf = m.vmDefinition?.content ?? '';
  const disks: PlannedDisk[] = m.disks
    .filter((d) => !o.devices || o.devices.includes(d.device))
    .map((d, i) => {
      const oldDiskId = String(d.meta?.['diskId']);
      const oldImageId = new RegExp(`${oldDiskId}/([0-9a-f-]{36})`).exec(ovf)?.[1];
      if (!oldImageId) throw new Error(`no image id for disk ${oldDiskId} in the ovf`);
      const diskId = randomUUID();
      const imageId = randomUUID();
      ovf = ovf.split(oldDiskId).join(diskId).split(oldImageId).join(imageId);
      const cow = d.format === 'qcow2';
      return {
        device: d.device,
        diskId,
        imageId,
        name: o.mode === 'vm' ? `${o.name ?? 'restored'}_Disk${i + 1}` : `${String(d.meta?.['alias'])}-restored`,
        description: '',
        storageDomainId: o.storageDomain.id,
        storageDomainName: o.storageDomain.name,
        format: cow ? 'cow' : 'raw',
        sparse: true,
        backup: cow ? 'incremental' : 'none',
        provisionedSize: d.virtualSize,
        initialSize: null,
        dataBytes: 0,
        interface: 'virtio',
        bootable: o.mode === 'vm' && i === 0,
      };
    });
  ovf = ovf.replace(/<Name>[^<]*<\/Name>/, `<Name>${o.name ?? ''}</Name>`).replace(/<rasd:MACAddress>[^<]*<\/rasd:MACAddress>/g, '<rasd:MACAddress></rasd:MACAddress>');
  return {
    pointId: m.pointId,
    sourceVm: { id: m.vm.id ?? m.vm.key, name: m.vm.name },
    mode: o.mode,
    vm:
      o.mode === 'vm'
        ? { name: o.name ?? 'restored', clusterId: o.cluster.id, clusterName: o.cluster.name, regenerateIds: true, regenerateMacs: true, description: '', ovf, nics: [] }
        : null,
    attachToVmId: o.attachToVmId ?? null,
    useProxy: o.useProxy ?? false,
    disks,
    problems: [],
    ok: true,
  };
}
