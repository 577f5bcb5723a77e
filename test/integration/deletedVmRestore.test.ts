import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { EngineClient } from '../../backend/src/engine';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { runCli } from '../helpers/cli';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { jobDone, withRepository } from '../helpers/serviceWaits';

const MiB = 1 << 20;

/**
 * The disaster-recovery case: a VM deleted in the engine. Its points stay visible to backup
 * admins ("Deleted VMs"; nobody else), and with the service down the operator brings it back
 * from the backup server's shell under its original ids — VM id, disk ids, MACs — with the same
 * planner and executor the portal uses: the plan first (nothing written when it has errors),
 * then the VM, which starts, its disks byte-identical to the point.
 */
describe('restore of a VM the engine no longer has (engine simulator, real QEMU, the real CLI)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let web: SimVm;
  let point: string;
  let backupJob: string;
  let pw: string;
  let macs: string[];
  const repoDir = (): string => path.join(dir, 'svc', 'repository');

  const adminEngine = (): EngineClient => new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
  const engineArgs = (): string[] => ['--engine', sim.baseUrl, '--engine-user', sim.users.admin.name, '--engine-password-file', pw, ...(sim.caFile ? ['--engine-ca', sim.caFile] : [])];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-deleted-vm-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), minLockDays: 7 });
    pw = path.join(dir, 'admin-password');
    await fs.writeFile(pw, `${sim.users.admin.password}\n`, { mode: 0o600 });
    web = sim.vmByName('web01');
    const e = adminEngine();
    try {
      macs = (await e.listVmNics(web.id)).map((n) => n.mac ?? '').sort();
    } finally {
      await e.close();
    }
    expect(macs.every((m) => m !== '')).toBe(true);
    await sim.guestWrite(web.id, web.disks[0]!.id, 3 * MiB, randomBytes(2 * MiB));
    const admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const r = await admin.post(`/api/v1/vms/${web.id}/backups`);
    expect(r.status).toBe(202);
    backupJob = r.body.job.id;
    point = (await jobDone(admin, backupJob)).result!.pointId;
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('while the VM exists, a restore under its original ids is refused by the plan, and nothing is written', async () => {
    const before = sim.vmIds().length;
    const r = await runCli(['restore', '--repo', repoDir(), '--point', point, ...engineArgs(), '--original-ids']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/error: vm web01 still exists/);
    expect(r.stderr).toMatch(/the restore cannot go ahead/);
    expect(sim.vmIds().length).toBe(before);
  });

  test('deleted in the engine: listed under Deleted VMs for backup admins only, its points still theirs to read', async () => {
    await sim.deleteVm(web.id);
    const admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const list = S.DeletedVmList.parse((await admin.get('/api/v1/deleted-vms')).body);
    expect(list.vms).toEqual([expect.objectContaining({ id: web.id, name: 'web01', pointCount: 1, lastPoint: expect.objectContaining({ id: point }) })]);
    expect(list.vms[0]!.ovf?.disks.map((d) => d.diskId).sort()).toEqual(web.disks.map((d) => d.id).sort());
    expect((await admin.get(`/api/v1/points/${point}`)).status).toBe(200);
    expect(S.PointList.parse((await admin.get(`/api/v1/vms/${web.id}/points`)).body).points.map((p) => p.id)).toEqual([point]);
    // a user who saw web01 before sees nothing now: no VM, no points, no list
    const plain = apiClient(svc.url, await ssoToken(sim, 'plain'));
    expect((await plain.get(`/api/v1/points/${point}`)).status).toBe(404);
    expect((await plain.get('/api/v1/deleted-vms')).status).toBe(403);
    // its jobs stay the admins' to follow; for the user they went with the VM
    expect((await admin.get(`/api/v1/jobs/${backupJob}`)).status).toBe(200);
    expect(S.JobList.parse((await admin.get(`/api/v1/jobs?vmId=${web.id}`)).body).jobs.map((j) => j.id)).toEqual([backupJob]);
    expect((await plain.get(`/api/v1/jobs/${backupJob}`)).status).toBe(404);
    expect(S.JobList.parse((await plain.get(`/api/v1/jobs?vmId=${web.id}`)).body).jobs).toEqual([]);
  });

  test('a backup admin verifies a deleted VM\'s point and follows the job live; a user who saw the VM is refused as for any unknown point', async () => {
    const admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const ws = await EventsClient.open(svc.url, await ssoToken(sim, 'admin'));
    try {
      await ws.waitFor((m) => m.type === 'snapshot');
      const r = await admin.post(`/api/v1/points/${point}/verify`);
      expect(r.status).toBe(202);
      const done = await ws.waitFor((m) => m.type === 'job' && m.job.id === r.body.job.id && m.job.state === 'succeeded', 120_000);
      expect(done).toMatchObject({ job: { vmId: web.id, kind: 'verify' } });
    } finally {
      ws.close();
    }
    const plain = apiClient(svc.url, await ssoToken(sim, 'plain'));
    expect((await plain.post(`/api/v1/points/${point}/verify`)).status).toBe(404);
  });

  test('with the service stopped, the CLI brings it back under its own ids: the plan first, then a VM that starts, disks byte-identical to the point', async () => {
    expect(await svc.stop()).toBe(0);
    const dry = await runCli(['restore', '--repo', repoDir(), '--point', point, ...engineArgs(), '--original-ids', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as { ok: boolean; vm: { name: string; originalIds: boolean }; disks: Array<{ diskId: string }>; problems: unknown[] };
    expect(plan).toMatchObject({ ok: true, vm: { name: 'web01', originalIds: true } });
    expect(plan.disks.map((d) => d.diskId).sort()).toEqual(web.disks.map((d) => d.id).sort());
    expect(sim.vmIds().includes(web.id)).toBe(false); // a dry run writes nothing

    const run = await runCli(['restore', '--repo', repoDir(), '--point', point, ...engineArgs(), '--original-ids', '--json'], 300_000);
    expect([run.code, run.stderr]).toEqual([0, '']);
    const out = JSON.parse(run.stdout) as { vmId: string; vmName: string; disks: Array<{ diskId: string; verified: boolean }> };
    expect(out).toMatchObject({ vmId: web.id, vmName: 'web01' });
    expect(out.disks.every((d) => d.verified)).toBe(true);

    const back = sim.vmById(web.id);
    expect(back.name).toBe('web01');
    expect(back.disks.map((d) => d.id).sort()).toEqual(web.disks.map((d) => d.id).sort());
    const engine = adminEngine();
    try {
      expect((await engine.listVmNics(web.id)).map((n) => n.mac ?? '').sort()).toEqual(macs);
      await engine.startVm(web.id);
      await engine.waitForVmStatus(web.id, ['up'], { timeoutMs: 120_000 });
    } finally {
      await engine.close();
    }
    for (const d of web.disks) {
      const expected = await withRepository(repoDir(), (r) => restoredBytes(r, point, d.deviceId, path.join(dir, `${d.deviceId}.raw`)));
      expectSameBytes(await sim.diskBytes(web.id, d.id), expected, `disk ${d.deviceId} of web01 back under its own ids`);
    }
  });
});
