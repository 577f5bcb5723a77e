import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job, ServerMessage } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { EngineClient } from '../../backend/src/engine';
import { runTool } from '../../backend/src/util/exec';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes } from '../helpers/backupFixture';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';

const MiB = 1 << 20;
type Api = ReturnType<typeof apiClient>;

describe('restore through the service API into the engine simulator (real QEMU, image transfers, imageio)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let user: Api;
  let engine: EngineClient;
  let ws: EventsClient;
  let web: SimVm;
  let incremental: string;
  const atIncremental = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-restore-api-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc') });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    user = apiClient(svc.url, await ssoToken(sim, 'plain'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    ws = await EventsClient.open(svc.url, await ssoToken(sim, 'admin'));
    web = sim.vmByName('web01');
    // a full, guest writes on both disks, an incremental: the incremental point is restored
    await backup(web.id);
    await sim.guestWrite(web.id, web.disks[0]!.id, 7 * MiB, randomBytes(3 * MiB));
    await sim.guestWrite(web.id, web.disks[1]!.id, 1 * MiB, randomBytes(1 * MiB));
    for (const d of web.disks) atIncremental.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    const job = await backup(web.id);
    expect(job.result?.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    incremental = job.result!.pointId;
    // the source keeps changing afterwards: the restore must give the point, not the present
    await sim.guestWrite(web.id, web.disks[0]!.id, 0, randomBytes(1 * MiB));
  });

  afterAll(async () => {
    ws?.close();
    await engine?.close();
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function finished(jobId: string): Promise<Job> {
    const m = await ws.waitFor(
      (x): x is Extract<ServerMessage, { type: 'job' }> => x.type === 'job' && x.job.id === jobId && ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(x.job.state),
      240_000,
    );
    return m.job;
  }

  async function backup(vmId: string): Promise<Job> {
    const r = await admin.post(`/api/v1/vms/${vmId}/backups`);
    expect(r.status).toBe(202);
    const job = await finished(S.StartBackupResponse.parse(r.body).job.id);
    expect(job.state).toBe('succeeded');
    return job;
  }

  test('the plan of a new VM beside the original: new names, ids and MACs, the point\'s disks, the choices the dialog offers', async () => {
    const r = await admin.post(`/api/v1/points/${incremental}/restore/plan`, { mode: 'vm' });
    expect(r.status).toBe(200);
    const plan = S.RestorePlanView.parse(r.body);
    expect(plan).toMatchObject({ ok: true, mode: 'vm', sourceVm: { id: web.id, name: 'web01' }, vm: { name: 'web01-restored', regenerateIds: true, regenerateMacs: true } });
    expect(plan.disks.map((d) => [d.name, d.format, d.provisionedSize])).toEqual(web.disks.map((d) => [d.alias.replace('web01', 'web01-restored'), d.format, d.provisionedSize]));
    expect(plan.targets.storageDomains.filter((s) => s.usable).length).toBeGreaterThanOrEqual(2);
    expect(plan.targets.vms.map((v) => v.name).sort()).toEqual(['app01', 'db01', 'web01']);
    // the plain user may plan restores of web01 only; app01's points do not exist for him
    const userPlan = S.RestorePlanView.parse((await user.post(`/api/v1/points/${incremental}/restore/plan`, { mode: 'vm' })).body);
    expect(userPlan.targets.vms.map((v) => v.name)).toEqual(['web01']);
  });

  test('keeping the MACs while the original has them: the plan names the conflict and the restore is refused; bad bodies are 400', async () => {
    const r = S.RestorePlanView.parse((await admin.post(`/api/v1/points/${incremental}/restore/plan`, { mode: 'vm', regenerateMacs: false, vmName: 'web01-macs' })).body);
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.code)).toContain('MAC_IN_USE');
    const start = await admin.post(`/api/v1/points/${incremental}/restore`, { mode: 'vm', regenerateMacs: false, vmName: 'web01-macs' });
    expect(start.status).toBe(409);
    expect(start.body.error).toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringContaining('in use by vm web01') });
    const taken = S.RestorePlanView.parse((await admin.post(`/api/v1/points/${incremental}/restore/plan`, { mode: 'vm', vmName: 'db01' })).body);
    expect(taken.problems.map((p) => p.code)).toContain('VM_NAME_EXISTS');
    for (const [body, msg] of [
      [{ mode: 'vm', vmName: '../etc' }, /vmName/],
      [{ mode: 'everything' }, /mode/],
      [{ mode: 'vm', bogus: 1 }, /unknown field "bogus"/],
      [{ mode: 'disks', attachToVmId: 'not-a-uuid' }, /attachToVmId/],
    ] as const) {
      const b = await admin.post(`/api/v1/points/${incremental}/restore/plan`, body);
      expect([b.status, b.body.error.message]).toEqual([400, expect.stringMatching(msg)]);
    }
    expect((await admin.post('/api/v1/points/20200101T000000Z-000000000000/restore/plan', { mode: 'vm' })).status).toBe(404);
  });

  test('restoring the incremental point as a new VM: a new VM, new MACs, both disks named as planned and byte-identical to the source at that point', async () => {
    const before = await engine.listVms();
    const r = await admin.post(`/api/v1/points/${incremental}/restore`, { mode: 'vm', vmName: 'web01-copy' });
    expect(r.status).toBe(202);
    const started = S.StartRestoreResponse.parse(r.body);
    expect(started.job).toMatchObject({ kind: 'restore', vmId: web.id, restore: { pointId: incremental, mode: 'vm', target: 'web01-copy' } });
    const job = await finished(started.job.id);
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    const phases = new Set(ws.messages.filter((m) => m.type === 'progress' && m.jobId === job.id).map((m) => (m as { progress: { phase: string } }).progress.phase));
    expect([...phases]).toEqual(expect.arrayContaining(['uploading']));
    const restored = job.result?.restored;
    expect(restored?.vmName).toBe('web01-copy');
    expect(restored?.disks.every((d) => d.verified)).toBe(true);
    const vm = await engine.getVm(restored!.vmId!, { withDisks: true, withNics: true });
    expect(before.map((v) => v.id)).not.toContain(vm.id);
    expect(vm).toMatchObject({ name: 'web01-copy', status: 'down', description: expect.stringMatching(/^Restored by olvm-backup from web01 at /) });
    const original = await engine.listVmNics(web.id);
    expect(vm.nics?.map((n) => n.mac).filter(Boolean)).toHaveLength(original.length);
    for (const n of vm.nics ?? []) expect(original.map((o) => o.mac)).not.toContain(n.mac);
    const copy = sim.vmById(vm.id);
    expect(copy.disks.map((d) => [d.alias, d.provisionedSize])).toEqual(web.disks.map((d) => [d.alias.replace('web01', 'web01-copy'), d.provisionedSize]));
    for (const [i, d] of copy.disks.entries()) {
      expectSameBytes(await sim.diskBytes(copy.id, d.id), atIncremental.get(web.disks[i]!.deviceId)!, `restored ${d.alias}`);
    }
    const log = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job.id}`)).body).log.map((l) => l.message).join('\n');
    expect(log).toMatch(/restored as vm web01-copy/);
  });

  test('a disk-only restore attaches the new disk to another VM', async () => {
    const db = sim.vmByName('db01');
    const device = web.disks[1]!.deviceId;
    const body = { mode: 'disks', attachToVmId: db.id, disks: [{ device: web.disks[0]!.deviceId, include: false }, { device, include: true, name: 'web01-scratch-for-db' }] };
    const plan = S.RestorePlanView.parse((await admin.post(`/api/v1/points/${incremental}/restore/plan`, body)).body);
    expect(plan).toMatchObject({ ok: true, vm: null, attachToVmId: db.id, disks: [{ name: 'web01-scratch-for-db' }] });
    const job = await finished(S.StartRestoreResponse.parse((await admin.post(`/api/v1/points/${incremental}/restore`, body)).body).job.id);
    expect(job.state).toBe('succeeded');
    const attached = sim.vmById(db.id).disks.find((d) => d.alias === 'web01-scratch-for-db');
    expect(attached).toBeDefined();
    expectSameBytes(await sim.diskBytes(db.id, attached!.id), atIncremental.get(device)!, 'disk restored onto db01');
    // the plain user cannot restore onto db01, which he cannot see
    expect((await user.post(`/api/v1/points/${incremental}/restore/plan`, body)).status).toBe(404);
  });

  test('download: a raw image streams with the right checksum and resumes with Range; a qcow2 image converts back to the same bytes', async () => {
    const device = web.disks[0]!.deviceId;
    const expected = atIncremental.get(device)!;
    const t = S.DownloadTicket.parse((await admin.post(`/api/v1/points/${incremental}/disks/${device}/download`, { format: 'raw' })).body);
    expect(t).toMatchObject({ sizeBytes: expected.length, format: 'raw' });
    const whole = await fetch(`${svc.url}${t.url}`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-disposition')).toMatch(/attachment; filename=".*\.img"/);
    const body = Buffer.from(await whole.arrayBuffer());
    expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    const part = await fetch(`${svc.url}${t.url}`, { headers: { Range: `bytes=${5 * MiB + 7}-` } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes ${5 * MiB + 7}-${expected.length - 1}/${expected.length}`);
    expectSameBytes(Buffer.from(await part.arrayBuffer()), expected.subarray(5 * MiB + 7), 'resumed download');
    expect((await fetch(`${svc.url}${t.url}`, { headers: { Range: `bytes=${expected.length}-` } })).status).toBe(416);
    expect((await fetch(`${svc.url}/api/v1/downloads/${'0'.repeat(48)}`)).status).toBe(404);

    const q = S.DownloadTicket.parse((await admin.post(`/api/v1/points/${incremental}/disks/${device}/download`, { format: 'qcow2' })).body);
    const qres = await fetch(`${svc.url}${q.url}`);
    expect(qres.status).toBe(200);
    const qfile = path.join(dir, 'dl.qcow2');
    await fs.writeFile(qfile, Buffer.from(await qres.arrayBuffer()));
    const raw = path.join(dir, 'dl.raw');
    await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qfile, raw], { timeoutMs: 60_000 });
    expectSameBytes(await fs.readFile(raw), expected, 'qcow2 download');
    // tickets are for callers holding backup_disk on the VM and edit_disk_properties on the disk:
    // seeing the VM (user1: UserRole on web01) is not enough
    const seen = await user.post(`/api/v1/points/${incremental}/disks/${device}/download`);
    expect([seen.status, seen.body.error.code, seen.body.error.message]).toEqual([403, 'FORBIDDEN', expect.stringMatching(/backup_disk on vm web01.*edit_disk_properties/)]);
    expect((await apiClient(svc.url, await ssoToken(sim, 'operator')).post(`/api/v1/points/${incremental}/disks/${device}/download`)).status).toBe(201);
    const app = sim.vmByName('app01');
    expect(app).toBeDefined();
    expect((await admin.post(`/api/v1/points/${incremental}/disks/..%2F..%2Fx/download`)).status).toBe(400);
  });
});
