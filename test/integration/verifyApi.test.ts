import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Repository } from '../../backend/src/repository';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { backupDone, jobDone, withRepository } from '../helpers/serviceWaits';

const MiB = 1 << 20;
const DATA_AT = 3 * MiB;

type Api = ReturnType<typeof apiClient>;

/**
 * Verify jobs through the service: a point's verify (backup_disk on its VM), the repository's
 * (backup admins start it; each user sees only their points in the result), damage shown on the
 * point and in the VM list, and the next backup healing it.
 */
describe('verify jobs through the service (engine simulator, real QEMU, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let user: Api;
  let web: SimVm;
  let app: SimVm;
  let webPoint: string;
  let appPoint: string;
  const webAtBackup = new Map<string, Buffer>();

  const repoDir = (): string => path.join(dir, 'svc', 'repository');
  const withRepo = <T>(fn: (r: Repository) => Promise<T>): Promise<T> => withRepository(repoDir(), fn);

  /** Flips a byte in the middle of the stored chunk that holds the disk's bytes at DATA_AT. */
  async function corrupt(pointId: string, device: string): Promise<string> {
    const hex = await withRepo(async (r) => {
      const index = await r.readIndex(pointId, device);
      return index.digestHex(DATA_AT / index.chunkSize);
    });
    const file = path.join(repoDir(), 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
    await fs.chmod(file, 0o644);
    const raw = await fs.readFile(file);
    raw[raw.length >> 1]! ^= 0x20;
    await fs.writeFile(file, raw);
    return hex;
  }

  async function verify(api: Api, p: string): Promise<Job> {
    const r = await api.post(p);
    expect([p, r.status]).toEqual([p, 202]);
    const started = S.StartVerifyResponse.parse(r.body).job;
    expect(started).toMatchObject({ kind: 'verify', state: expect.stringMatching(/^(queued|running)$/) });
    const done = await jobDone(api, started.id);
    expect(done.state).toBe('succeeded');
    return done;
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-verify-api-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    // format 1: corrupt() flips a byte of one chunk file (format 2 keeps chunks in packs)
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), config: 'repository: { format: 1 }\n' });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    // the operator: UserVmManager on web01 (sees it, may back it up and verify it), nothing on app01
    user = apiClient(svc.url, await ssoToken(sim, 'operator'));
    web = sim.vmByName('web01'); // the operator's
    app = sim.vmByName('app01'); // not theirs, down, one raw disk
    // data of their own at DATA_AT: a chunk only this VM's point holds
    await sim.guestWrite(web.id, web.disks[0]!.id, DATA_AT, randomBytes(MiB));
    const img = await fs.open(app.disks[0]!.file, 'r+');
    try {
      await img.write(randomBytes(MiB), 0, MiB, DATA_AT);
    } finally {
      await img.close();
    }
    for (const d of web.disks) webAtBackup.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    webPoint = (await backupDone(admin, web.id)).result!.pointId;
    appPoint = (await backupDone(admin, app.id)).result!.pointId;
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("a point's verify: backup_disk on its VM; a whole point verifies clean; the job is the VM's", async () => {
    // seeing the VM is not enough: user1 holds UserRole on web01 only
    const plain = await apiClient(svc.url, await ssoToken(sim, 'plain')).post(`/api/v1/points/${webPoint}/verify`);
    expect([plain.status, plain.body.error.message]).toEqual([403, expect.stringContaining('backup_disk on vm web01')]);
    const job = await verify(user, `/api/v1/points/${webPoint}/verify`);
    expect(job).toMatchObject({ vmId: web.id, vmName: 'web01', requestedBy: { name: expect.any(String) }, result: { pointId: webPoint, verified: { points: 1, damaged: [], quarantined: 0, cleared: [] } } });
    const listed = S.JobList.parse((await user.get(`/api/v1/jobs?vmId=${web.id}`)).body).jobs;
    expect(listed.find((j) => j.id === job.id)).toMatchObject({ kind: 'verify' });
    expect((await user.post(`/api/v1/points/${appPoint}/verify`)).status).toBe(404);
    expect((await admin.post(`/api/v1/points/${webPoint}/verify`, { deep: true })).status).toBe(400);
    expect((await admin.post('/api/v1/points/not-a-point/verify')).status).toBe(400);
    expect(S.PointDetail.parse((await user.get(`/api/v1/points/${webPoint}`)).body).damaged).toBe(false);
    expect(S.VmList.parse((await user.get('/api/v1/vms')).body).vms.find((v) => v.id === web.id)?.damagedPoints).toBe(0);
  });

  test("the repository's verify finds corrupt chunks of two VMs' points: each caller sees only their points; the damage shows on the point and in the VM list, and in the audit", async () => {
    await corrupt(webPoint, web.disks[0]!.deviceId);
    await corrupt(appPoint, app.disks[0]!.deviceId);

    // a backup admin starts it (the operator may not); the operator sees web01's point only in its
    // result (also on their WebSocket)
    expect((await user.post('/api/v1/repository/verify')).status).toBe(403);
    const ws = await EventsClient.open(svc.url, await ssoToken(sim, 'operator'));
    const started = await verify(admin, '/api/v1/repository/verify');
    const job = S.JobDetail.parse((await user.get(`/api/v1/jobs/${started.id}`)).body);
    try {
      const m = await ws.waitFor((x) => x.type === 'job' && x.job.id === job.id && x.job.state === 'succeeded');
      expect(m).toMatchObject({ job: { result: { verified: { points: 1, damaged: [webPoint] } } } });
      expect(JSON.stringify(ws.messages)).not.toContain(appPoint);
    } finally {
      ws.close();
    }
    expect(job).toMatchObject({ vmName: 'repository', vmId: '00000000-0000-0000-0000-000000000000', result: { pointId: '', verified: { points: 1, damaged: [webPoint], quarantined: 2, cleared: [] } } });
    expect(JSON.stringify(job)).not.toContain(appPoint);
    const asAdmin = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job.id}`)).body);
    expect(asAdmin.result?.verified).toEqual({ points: 2, damaged: [webPoint, appPoint].sort(), quarantined: 2, cleared: [] });
    // listed for both (a repository job concerns everyone), filtered the same way
    const theirs = S.JobList.parse((await user.get('/api/v1/jobs')).body).jobs.find((j) => j.id === job.id);
    expect(theirs?.result?.verified?.damaged).toEqual([webPoint]);

    expect(S.PointDetail.parse((await user.get(`/api/v1/points/${webPoint}`)).body).damaged).toBe(true);
    const vms = S.VmList.parse((await admin.get('/api/v1/vms')).body).vms;
    expect(Object.fromEntries(vms.map((v) => [v.name, v.damagedPoints]))).toMatchObject({ web01: 1, app01: 1, db01: 0 });

    const audit = S.AuditList.parse((await admin.get('/api/v1/audit')).body).entries;
    expect(audit.filter((e) => e.kind === 'damage-mark').map((e) => e.pointId).sort()).toEqual([webPoint, appPoint].sort());
    expect(audit.filter((e) => e.kind === 'chunk-quarantine')).toHaveLength(2);
    expect(audit.find((e) => e.kind === 'damage-mark')?.actor).toMatch(/^service:/);
    // the audit log names every VM: only backup admins read it, not the operator
    const theirAudit = await user.get('/api/v1/audit');
    expect([theirAudit.status, theirAudit.body?.error?.code]).toEqual([403, 'FORBIDDEN']);
    expect(JSON.stringify(theirAudit.body)).not.toContain(appPoint);
  });

  test('the next backup stores the damaged data again: it restores exactly, and the damaged point verifies whole again', async () => {
    const job = await backupDone(admin, web.id);
    expect(job.result!.disks[0]).toMatchObject({ mode: 'full', reason: 'parent-damaged' });
    const now = await sim.diskBytes(web.id, web.disks[0]!.id);
    const healed = await withRepo((r) => restoredBytes(r, job.result!.pointId, web.disks[0]!.deviceId, path.join(dir, 'healed.raw')));
    expectSameBytes(healed, now, 'the backup after the damage');

    // the chunk the old point needs is in the store again: its verify clears the mark
    const again = await verify(user, `/api/v1/points/${webPoint}/verify`);
    expect(again.result?.verified).toEqual({ points: 1, damaged: [], quarantined: 0, cleared: [webPoint] });
    expect(S.PointDetail.parse((await user.get(`/api/v1/points/${webPoint}`)).body).damaged).toBe(false);
    for (const [device, expected] of webAtBackup) {
      const got = await withRepo((r) => restoredBytes(r, webPoint, device, path.join(dir, `old-${device}.raw`)));
      expectSameBytes(got, expected, `disk ${device} of the healed point`);
    }
  });
});
