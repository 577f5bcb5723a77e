import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job, PointSummary, ServerMessage } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { EngineClient } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { BlockApi } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';

const MiB = 1 << 20;
const BIG = 192 * MiB;
const ORIGIN = 'https://engine.example.test';

type Api = ReturnType<typeof apiClient>;

describe('backup service: REST + WebSocket against the engine simulator (real QEMU, real HTTP, a real ws client)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let adminToken: string;
  let userToken: string;
  let admin: Api;
  let user: Api;
  let web: SimVm;
  let app: SimVm;
  let big: SimVm;
  const sockets: EventsClient[] = [];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-svc-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    web = sim.vmByName('web01');
    app = sim.vmByName('app01');
    // a VM whose full copy takes long enough to be interrupted mid-way
    big = await sim.addVm({ name: 'big01', disks: [{ sizeBytes: BIG, format: 'raw' }], permittedToPlainUser: false });
    const img = await fs.open(big.disks[0]!.file, 'r+');
    try {
      for (let off = 0; off < BIG; off += 8 * MiB) await img.write(randomBytes(8 * MiB), 0, 8 * MiB, off);
    } finally {
      await img.close();
    }
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), corsOrigins: [ORIGIN] });
    adminToken = await ssoToken(sim, 'admin');
    userToken = await ssoToken(sim, 'plain');
    admin = apiClient(svc.url, adminToken);
    user = apiClient(svc.url, userToken);
    const engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    await engine.startVm(big.id);
    await engine.close();
    big = await waitVm(sim, big.id, 'up');
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function events(token: string | null = adminToken): Promise<EventsClient> {
    const c = await EventsClient.open(svc.url, token);
    sockets.push(c);
    return c;
  }

  async function startBackup(api: Api, vmId: string, body?: unknown): Promise<Job> {
    const r = await api.post(`/api/v1/vms/${vmId}/backups`, body);
    expect([r.status, r.body]).toEqual([202, expect.anything()]);
    return S.StartBackupResponse.parse(r.body).job;
  }

  async function jobDone(ws: EventsClient, jobId: string, timeoutMs = 120_000): Promise<Job> {
    const m = await ws.waitFor((x): x is Extract<ServerMessage, { type: 'job' }> => x.type === 'job' && x.job.id === jobId && ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(x.job.state), timeoutMs);
    return m.job;
  }

  async function restoredDisk(pointId: string, device: string): Promise<Buffer> {
    const repo = await Repository.open(path.join(dir, 'svc', 'repository'));
    try {
      return await restoredBytes(repo, pointId, device, path.join(dir, `r-${randomBytes(4).toString('hex')}.raw`));
    } finally {
      await repo.close();
    }
  }

  async function qemuState(vm: SimVm): Promise<{ exports: string[]; jobs: string[]; nodes: string[]; bitmaps: Array<{ device: string; name: string; recording: boolean; dirtyBytes: number }> }> {
    const qmp = await new LocalHost({ qmpDir: sim.qmpDir }).openQmp(vm);
    try {
      const api = new BlockApi(qmp);
      const devices = await api.listDevices();
      return {
        exports: await api.exportIds(),
        jobs: await api.jobIds(),
        nodes: (await api.nodes()).map((n) => n.nodeName).filter((n) => n.startsWith('olvm')),
        bitmaps: devices.flatMap((d) => d.bitmaps.map((b) => ({ device: d.deviceId, name: b.name, recording: b.recording, dirtyBytes: b.dirtyBytes }))),
      };
    } finally {
      await qmp.close();
    }
  }

  test('admin: a backup started through the API is followed over the WebSocket to success; the second is incremental; both restore byte-exact', async () => {
    const ws = await events();
    const ready = await ws.waitFor((m) => m.type === 'ready');
    expect(ready).toMatchObject({ user: { userName: expect.stringContaining('admin') } });
    await ws.waitFor((m) => m.type === 'snapshot');

    const ref1 = new Map<string, Buffer>();
    for (const d of web.disks) ref1.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    const job1 = await startBackup(admin, web.id);
    expect(job1).toMatchObject({ vmId: web.id, vmName: 'web01', kind: 'backup', forceFull: false });
    const done1 = await jobDone(ws, job1.id);
    expect(done1.state).toBe('succeeded');
    const progress = ws.messages.filter((m): m is Extract<ServerMessage, { type: 'progress' }> => m.type === 'progress' && m.jobId === job1.id).map((m) => m.progress);
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) S.JobProgress.parse(p);
    const pointMsg = await ws.waitFor((m) => m.type === 'point' && m.point.id === done1.result?.pointId);
    S.PointSummary.parse((pointMsg as { point: PointSummary }).point);

    const points = await admin.get(`/api/v1/vms/${web.id}/points`);
    expect(points.status).toBe(200);
    const list = S.PointList.parse(points.body).points;
    expect(list.map((p) => p.id)).toEqual([done1.result?.pointId]);
    expect(list[0]!.disks.every((d) => d.mode === 'full' && d.reason === 'first-backup')).toBe(true);
    for (const d of list[0]!.disks) expectSameBytes(await restoredDisk(list[0]!.id, d.device), ref1.get(d.device)!, `first point, ${d.alias}`);

    // the guest writes, then the second backup copies only that
    const disk = web.disks[0]!;
    await sim.guestWrite(web.id, disk.id, 5 * MiB, randomBytes(2 * MiB));
    const ref2 = new Map<string, Buffer>();
    for (const d of web.disks) ref2.set(d.deviceId, await sim.diskBytes(web.id, d.id));
    const job2 = await startBackup(admin, web.id);
    const done2 = await jobDone(ws, job2.id);
    expect(done2.state).toBe('succeeded');
    expect(done2.result?.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    expect(done2.result?.bytesRead).toBeLessThanOrEqual(3 * MiB);
    const p2 = S.PointDetail.parse((await admin.get(`/api/v1/points/${done2.result!.pointId}`)).body);
    expect(p2).toMatchObject({ vmId: web.id, parentPointId: done1.result?.pointId, ovfAvailable: true, jobId: job2.id });
    expect(p2.ovf?.name).toBe('web01');
    for (const d of p2.disks) expectSameBytes(await restoredDisk(p2.id, d.device), ref2.get(d.device)!, `second point, ${d.alias}`);

    const detail = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job2.id}`)).body);
    expect(detail.log.map((l) => l.message).join('\n')).toMatch(/queued by .*\n.*started[\s\S]*succeeded: restore point/);
    const vms = S.VmList.parse((await admin.get('/api/v1/vms')).body).vms;
    const w = vms.find((v) => v.id === web.id)!;
    expect(w).toMatchObject({ pointCount: 2, lastPoint: { id: done2.result?.pointId }, lastJob: { id: job2.id, state: 'succeeded' } });
    // web01's first disk is qcow2 (bitmap kept on disk), its second raw (bitmap in memory, QEMU still the same)
    expect(w.chain.map((c) => c.state)).toEqual(['ok', 'ok']);
    expect(vms.find((v) => v.name === 'db01')?.chain).toEqual(
      expect.arrayContaining([expect.objectContaining({ state: 'will-be-full', reason: 'first-backup' }), expect.objectContaining({ excluded: true, reason: 'excluded' })]),
    );
  });

  test('a second request for a VM with a pending backup joins it; a full one asked meanwhile is refused clearly', async () => {
    const ws = await events();
    const first = await startBackup(admin, big.id, { full: true });
    const again = await admin.post(`/api/v1/vms/${big.id}/backups`, { full: true });
    expect(again.status).toBe(200);
    expect(S.StartBackupResponse.parse(again.body)).toMatchObject({ joined: true, job: { id: first.id } });
    const done = await jobDone(ws, first.id);
    expect(done.state).toBe('succeeded');
    const web2 = await startBackup(admin, web.id);
    const conflict = await admin.post(`/api/v1/vms/${web.id}/backups`, { full: true });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'JOB_CONFLICT', message: expect.stringContaining(web2.id) });
    expect((await jobDone(ws, web2.id)).state).toBe('succeeded');
  });

  test('the plain user sees only their VMs; another VM is 404 everywhere; bad or missing tokens get 401 and a closed socket', async () => {
    const vms = S.VmList.parse((await user.get('/api/v1/vms')).body).vms;
    expect(vms.map((v) => v.name)).toEqual(['web01']);
    expect((await user.get(`/api/v1/vms/${web.id}/points`)).status).toBe(200);
    for (const r of [await user.get(`/api/v1/vms/${app.id}/points`), await user.post(`/api/v1/vms/${app.id}/backups`), await user.get(`/api/v1/vms/${big.id}/points`)]) {
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
    }
    // big01's point and job exist, but not for this user
    const bigPoints = S.PointList.parse((await admin.get(`/api/v1/vms/${big.id}/points`)).body).points;
    expect((await user.get(`/api/v1/points/${bigPoints[0]!.id}`)).status).toBe(404);
    const bigJobs = S.JobList.parse((await admin.get(`/api/v1/jobs?vmId=${big.id}`)).body).jobs;
    expect(bigJobs.length).toBeGreaterThan(0);
    expect((await user.get(`/api/v1/jobs/${bigJobs[0]!.id}`)).status).toBe(404);
    expect((await user.post(`/api/v1/jobs/${bigJobs[0]!.id}/cancel`)).status).toBe(404);
    const userJobs = S.JobList.parse((await user.get('/api/v1/jobs')).body).jobs;
    expect(userJobs.length).toBeGreaterThan(0);
    expect(userJobs.every((j) => j.vmId === web.id)).toBe(true);

    const none = await apiClient(svc.url).get('/api/v1/vms');
    expect([none.status, none.body.error.code]).toEqual([401, 'AUTH_REQUIRED']);
    const bad = await apiClient(svc.url, 'not-a-token').get('/api/v1/vms');
    expect([bad.status, bad.body.error.code]).toEqual([401, 'AUTH_INVALID']);
    const basic = await apiClient(svc.url).raw('GET', '/api/v1/vms', undefined, { Authorization: 'Basic YWRtaW46eA==' });
    expect(basic.status).toBe(401);
    // a token the engine stops accepting (logout) is refused within the cache time; here a fresh one
    const expired = await ssoToken(sim, 'plain');
    sim.expireTokens('user1@internal');
    expect((await apiClient(svc.url, expired).get('/api/v1/vms')).status).toBe(401);
    userToken = await ssoToken(sim, 'plain');
    user = apiClient(svc.url, userToken);

    const wsBad = await events('not-a-token');
    expect(await wsBad.waitClosed()).toBe(4401);
    const wsGarbage = await EventsClient.open(svc.url, null);
    sockets.push(wsGarbage);
    wsGarbage.ws.send('hello');
    expect(await wsGarbage.waitClosed()).toBe(4400);
    expect(svc.logs()).not.toContain(adminToken);
    expect(svc.logs()).not.toContain(userToken);

    // the plain user's socket carries web01's events only
    const wsUser = await events(userToken);
    const snap = await wsUser.waitFor((m) => m.type === 'snapshot');
    expect((snap as { jobs: Job[] }).jobs.every((j) => j.vmId === web.id)).toBe(true);
    const wsAdmin = await events();
    await wsAdmin.waitFor((m) => m.type === 'snapshot');
    const hidden = await startBackup(admin, app.id);
    expect((await jobDone(wsAdmin, hidden.id, 180_000)).state).toBe('succeeded');
    expect(wsUser.messages.some((m) => (m.type === 'job' && m.job.vmId === app.id) || (m.type === 'progress' && m.vmId === app.id))).toBe(false);
  });

  test('bad input is refused with 400 (or 413 for an oversize body) and a clear message, never a 500', async () => {
    const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, RegExp]> = [
      ['malformed JSON', () => admin.post(`/api/v1/vms/${web.id}/backups`, '{"full": tru'), 400, /not valid JSON/],
      ['unknown field', () => admin.post(`/api/v1/vms/${web.id}/backups`, { fast: true }), 400, /unknown field "fast"/],
      ['wrong type', () => admin.post(`/api/v1/vms/${web.id}/backups`, { full: 'yes' }), 400, /request body\.full/],
      ['not an object', () => admin.post(`/api/v1/vms/${web.id}/backups`, [1, 2]), 400, /request body/],
      ['oversize body', () => admin.post(`/api/v1/vms/${web.id}/backups`, { full: false, pad: 'x'.repeat(100_000) }), 413, /larger than/],
      ['body not JSON', () => admin.post(`/api/v1/vms/${web.id}/backups`, 'full=true', { 'Content-Type': 'application/x-www-form-urlencoded' }), 400, /must be JSON/],
      ['path trick in vm id', () => admin.get('/api/v1/vms/..%2F..%2Fetc%2Fpasswd/points'), 400, /not an engine id/],
      ['dot-dot vm id', () => admin.get('/api/v1/vms/../points'), 404, /no route/],
      ['NUL in job id', () => admin.get('/api/v1/jobs/%00'), 400, /not a job id/],
      ['path trick in point id', () => admin.get('/api/v1/points/..%2F..%2Fconfig.json'), 400, /not a restore point id/],
      ['unknown query key', () => admin.get('/api/v1/jobs?sort=name'), 400, /unknown field "sort"/],
      ['bad limit', () => admin.get('/api/v1/jobs?limit=abc'), 400, /query\.limit/],
      ['bad state', () => admin.get('/api/v1/jobs?state=running,bogus'), 400, /query\.state/],
      ['repeated query key', () => admin.get('/api/v1/jobs?limit=1&limit=2'), 400, /query\.limit/],
      ['bad cursor', () => admin.get('/api/v1/jobs?before=garbage'), 400, /cursor|before/],
      ['unknown job', () => admin.get('/api/v1/jobs/00000000-0000-4000-8000-000000000000'), 404, /not found/],
      ['unknown point', () => admin.get('/api/v1/points/20200101T000000Z-000000000000'), 404, /not found/],
      ['unknown vm', () => admin.get('/api/v1/vms/00000000-0000-4000-8000-000000000000/points'), 404, /not found/],
    ];
    for (const [what, call, status, message] of cases) {
      const r = await call();
      expect([what, r.status]).toEqual([what, status]);
      S.ApiError.parse(r.body);
      expect([what, r.body.error.message]).toEqual([what, expect.stringMatching(message)]);
    }
    expect(svc.logs()).not.toMatch(/"level":50/);
  });

  test('cancel during a running backup: cancelled, QEMU left clean with the bitmap intact, the next backup correct', async () => {
    const ws = await events();
    // big01 has one full point; the guest rewrites a large part of it so the incremental is long
    const d = big.disks[0]!;
    await sim.guestWrite(big.id, d.id, 0, randomBytes(128 * MiB));
    const before = await qemuState(big);
    const chain = before.bitmaps.filter((b) => b.name.startsWith('olvm-backup-') && !b.name.includes('frozen'));
    expect(chain).toHaveLength(1);
    expect(chain[0]!.dirtyBytes).toBeGreaterThanOrEqual(128 * MiB);

    const job = await startBackup(admin, big.id);
    await ws.waitFor((m) => m.type === 'progress' && m.jobId === job.id && m.progress.phase === 'copying');
    const c = await admin.post(`/api/v1/jobs/${job.id}/cancel`);
    expect(c.status).toBe(200);
    expect(S.Job.parse(c.body).cancelRequested).toBe(true);
    const done = await jobDone(ws, job.id);
    expect(done).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED', message: expect.stringContaining('cancelled by') } });
    expect((await admin.post(`/api/v1/jobs/${job.id}/cancel`)).status).toBe(409);

    const after = await qemuState(big);
    expect(after.exports).toEqual([]);
    expect(after.jobs).toEqual([]);
    expect(after.nodes).toEqual([]);
    expect(after.bitmaps.filter((b) => b.name.startsWith('olvm-backup-'))).toEqual([{ ...chain[0]!, dirtyBytes: expect.any(Number) }]);
    const afterChain = after.bitmaps.find((b) => b.name === chain[0]!.name)!;
    expect(afterChain.recording).toBe(true);
    expect(afterChain.dirtyBytes).toBeGreaterThanOrEqual(chain[0]!.dirtyBytes); // nothing lost to the next incremental
    expect((S.PointList.parse((await admin.get(`/api/v1/vms/${big.id}/points`)).body).points)).toHaveLength(1);

    const ref = await sim.diskBytes(big.id, d.id);
    const next = await startBackup(admin, big.id);
    const ok = await jobDone(ws, next.id);
    expect(ok.state).toBe('succeeded');
    expect(ok.result?.disks[0]?.mode).toBe('incremental');
    expectSameBytes(await restoredDisk(ok.result!.pointId, d.deviceId), ref, 'big01 after a cancelled backup');
  });

  test('repository status, Prometheus metrics, health and the OpenAPI description', async () => {
    const repo = S.RepositoryStatus.parse((await admin.get('/api/v1/repository')).body);
    expect(repo.pointCount).toBeGreaterThanOrEqual(5);
    expect(repo.chunkCount).toBeGreaterThan(0);
    expect(repo.dedupRatio).toBeGreaterThan(1); // incrementals reference what earlier points stored
    expect(repo.usedBytes).toBeGreaterThan(0);
    expect(repo.logicalBytes).toBeGreaterThan(repo.referencedBytes);
    // the metrics name every policy: for the scrape token or a backup admin, not for anyone
    expect((await apiClient(svc.url).get('/metrics')).status).toBe(401);
    const metrics = await admin.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/olvm_backup_jobs\{state="succeeded"\} [1-9]/);
    expect(metrics.body).toMatch(/olvm_backup_jobs\{state="cancelled"\} 1/);
    expect(metrics.body).toMatch(/olvm_backup_read_bytes_total [1-9]/);
    expect(metrics.body).toMatch(/olvm_backup_job_duration_seconds_count [1-9]/);
    // anyone learns up or down; a caller with a token, the version and each check
    const up = await apiClient(svc.url).get('/api/v1/health');
    expect([up.status, S.HealthStatus.parse(up.body)]).toEqual([200, { status: 'ok' }]);
    const health = await admin.get('/api/v1/health');
    expect(health.status).toBe(200);
    expect(S.Health.parse(health.body).checks.every((c) => c.ok)).toBe(true);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // CORS: the engine's origin only
    const pre = await apiClient(svc.url).raw('OPTIONS', '/api/v1/vms', undefined, { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' });
    expect([pre.status, pre.headers.get('access-control-allow-origin')]).toEqual([204, ORIGIN]);
    const evil = await apiClient(svc.url).raw('OPTIONS', '/api/v1/vms', undefined, { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' });
    expect([evil.status, evil.headers.get('access-control-allow-origin')]).toEqual([403, null]);
    const get = await admin.raw('GET', '/api/v1/vms', undefined, { Origin: 'https://evil.example' });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
    const doc = await apiClient(svc.url).get('/api/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.components.schemas)).toEqual(expect.arrayContaining(['Job', 'VmSummary', 'PointDetail', 'RepositoryStatus']));
  });

  test('SIGTERM in the middle of a backup: the backup cleans up, the service exits 0, the job is interrupted, QEMU is left clean', async () => {
    const d = big.disks[0]!;
    await sim.guestWrite(big.id, d.id, 16 * MiB, randomBytes(128 * MiB));
    const ws = await events();
    const job = await startBackup(admin, big.id);
    await ws.waitFor((m) => m.type === 'progress' && m.jobId === job.id && m.progress.phase === 'copying');
    expect(await svc.stop()).toBe(0);
    expect(await ws.waitClosed()).toBe(1001);
    const after = await qemuState(big);
    expect([after.exports, after.jobs, after.nodes]).toEqual([[], [], []]);
    const chain = after.bitmaps.filter((b) => b.name.startsWith('olvm-backup-'));
    expect(chain).toHaveLength(1); // the frozen copy was merged back and removed
    expect(chain[0]).toMatchObject({ recording: true });
    expect(chain[0]!.dirtyBytes).toBeGreaterThanOrEqual(128 * MiB);

    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), corsOrigins: [ORIGIN] });
    admin = apiClient(svc.url, adminToken);
    expect(S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job.id}`)).body)).toMatchObject({ state: 'interrupted', error: { code: 'JOB_INTERRUPTED' } });
  });

  test('SIGKILL of the service in the middle of a backup: the job is interrupted, the VM comes back clean, a new backup restores correctly', async () => {
    const d = big.disks[0]!;
    await sim.guestWrite(big.id, d.id, 32 * MiB, randomBytes(128 * MiB));
    const ws = await events();
    const job = await startBackup(admin, big.id);
    await ws.waitFor((m) => m.type === 'progress' && m.jobId === job.id && m.progress.phase === 'copying');
    await svc.kill();
    const pointsBefore = (await fs.readdir(path.join(dir, 'svc', 'repository', 'points'))).length;

    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), corsOrigins: [ORIGIN] });
    admin = apiClient(svc.url, adminToken);
    const j = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job.id}`)).body);
    expect(j).toMatchObject({ state: 'interrupted', error: { code: 'JOB_INTERRUPTED' } });
    expect(svc.logs()).toContain('marked interrupted');
    // no half-written point became visible
    expect((await fs.readdir(path.join(dir, 'svc', 'repository', 'points'))).length).toBe(pointsBefore);
    expect(S.PointList.parse((await admin.get(`/api/v1/vms/${big.id}/points`)).body).points.every((p) => p.id !== (j.result?.pointId ?? ''))).toBe(true);

    await sim.guestWrite(big.id, d.id, 100 * MiB, randomBytes(4 * MiB));
    const ref = await sim.diskBytes(big.id, d.id);
    const ws2 = await events();
    const next = await startBackup(admin, big.id);
    const ok = await jobDone(ws2, next.id, 180_000);
    expect(ok.state).toBe('succeeded');
    const log = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${next.id}`)).body).log.map((l) => l.message).join('\n');
    expect(log).toMatch(/removed what an interrupted backup left in qemu/);
    expectSameBytes(await restoredDisk(ok.result!.pointId, d.deviceId), ref, 'big01 after the service was killed');
    const clean = await qemuState(big);
    expect([clean.exports, clean.jobs, clean.nodes]).toEqual([[], [], []]);
  });
});

async function waitVm(sim: EngineSim, id: string, status: string): Promise<SimVm> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const vm = sim.vmById(id);
    if (vm.status === status) return vm;
    if (Date.now() > deadline) throw new Error(`vm ${vm.name} is ${vm.status}, not ${status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
