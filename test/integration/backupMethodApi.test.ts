// The backup method and consistency through the service: what Backup now and a policy accept
// (and refuse, naming the allowed values), what reaches the job's spec, its result and log, the
// point's method in the points list, the VM list's foreseen method, and the start-up settlement
// of an engine backup an interrupted job left (engine simulator, real QEMU, a real service).
import { randomBytes, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Catalog } from '../../backend/src/catalog';
import { EngineSim, type SimVm } from '../engine-sim';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { eventually, jobDone } from '../helpers/serviceWaits';
import { jobsOf } from '../helpers/stores';

type Api = ReturnType<typeof apiClient>;

/** The simulator's backup API test hooks (branch e17-sim); absent from a simulator without that API. */
interface SimBackupHooks {
  imageioFaultNext(kind: 'error' | 'hang' | 'truncate', transferId?: string): void;
  phase(backupId: string): string | null;
}

function policyBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `m-${randomBytes(3).toString('hex')}`,
    // 03:00 on January 1st: never fires during a test by itself
    schedule: '0 3 1 1 *',
    timeZone: 'UTC',
    selection: { tag: 'daily' },
    retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    ...over,
  };
}

describe('backup method and consistency through the service (engine simulator, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let web: SimVm;
  let db: SimVm;

  const svcDir = (): string => path.join(dir, 'svc');
  const catalogFile = (): string => path.join(svcDir(), 'catalog.sqlite');
  const start = async (env: Record<string, string> = {}): Promise<void> => {
    svc = await startServiceProcess({ sim, dataDir: svcDir(), env });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
  };
  const withCatalog = <T>(fn: (c: Catalog) => T): T => {
    const c = Catalog.open(catalogFile());
    try {
      return fn(c);
    } finally {
      c.close();
    }
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-method-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    web = sim.vmByName('web01');
    db = sim.vmByName('db01');
    await start();
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a bad method or consistency → 400 naming the allowed values (Backup now and policies); nothing is queued', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      [`/api/v1/vms/${web.id}/backups`, { method: 'vddk' }, /^request body\.method: must be one of auto, qmp, engine$/],
      [`/api/v1/vms/${web.id}/backups`, { consistency: 'application' }, /^request body\.consistency: must be one of auto, filesystem, crash$/],
      [`/api/v1/vms/${web.id}/backups`, { method: 'QMP' }, /^request body\.method: must be one of auto, qmp, engine$/],
      ['/api/v1/policies', policyBody({ method: 'nbd' }), /^request body\.method: must be one of auto, qmp, engine$/],
      ['/api/v1/policies', policyBody({ consistency: 'app' }), /^request body\.consistency: must be one of auto, filesystem, crash$/],
    ];
    for (const [url, body, msg] of cases) {
      const r = await admin.post(url, body);
      expect([url, r.status, r.body?.error?.code, r.body?.error?.message]).toEqual([url, 400, 'BAD_REQUEST', expect.stringMatching(msg)]);
    }
    expect(withCatalog((c) => jobsOf(c).listJobs({ limit: 10 }).jobs)).toEqual([]);
    expect((await admin.get('/api/v1/policies')).body).toEqual({ policies: [] });
  });

  test('a policy keeps its method and consistency (create, read, replace); one without them reads as before', async () => {
    const created = await admin.post('/api/v1/policies', policyBody({ name: 'engine-fs', method: 'engine', consistency: 'filesystem' }));
    expect(created.status).toBe(201);
    const p = S.PolicySaveResponse.parse(created.body).policy;
    expect([p.method, p.consistency]).toEqual(['engine', 'filesystem']);
    const read = S.PolicyDetail.parse((await admin.get(`/api/v1/policies/${p.id}`)).body);
    expect([read.method, read.consistency]).toEqual(['engine', 'filesystem']);
    const replaced = await admin.raw('PUT', `/api/v1/policies/${p.id}`, policyBody({ name: 'engine-fs', method: 'qmp', consistency: 'crash' }));
    expect(replaced.status).toBe(200);
    const again = S.PolicyDetail.parse((await admin.get(`/api/v1/policies/${p.id}`)).body);
    expect([again.method, again.consistency]).toEqual(['qmp', 'crash']);
    const plain = S.PolicySaveResponse.parse((await admin.post('/api/v1/policies', policyBody())).body).policy;
    expect(Object.keys(plain)).not.toContain('method');
    expect(Object.keys(plain)).not.toContain('consistency');
    for (const id of [p.id, plain.id]) expect((await admin.raw('DELETE', `/api/v1/policies/${id}`)).status).toBe(204);
  });

  test('Backup now with method and consistency: the spec carries them, the job and its log name the method used, the point records it', async () => {
    const r = await admin.post(`/api/v1/vms/${web.id}/backups`, { method: 'qmp', consistency: 'crash' });
    expect(r.status).toBe(202);
    const queued = S.StartBackupResponse.parse(r.body).job;
    expect(withCatalog((c) => jobsOf(c).jobSpec(queued.id))).toMatchObject({ v: 1, kind: 'backup', method: 'qmp', consistency: 'crash', forceFull: false });
    const job: Job = await jobDone(admin, queued.id);
    expect([job.state, job.error, job.result?.method]).toEqual(['succeeded', null, 'qmp']);
    const detail = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job.id}`)).body);
    const messages = detail.log.map((l) => l.message);
    expect(messages).toContainEqual(expect.stringMatching(/^backup of vm web01 \(method qmp, consistency crash\) queued by /));
    expect(messages).toContainEqual('backed up by the QEMU monitor on the host (qmp)');
    const points = S.PointList.parse((await admin.get(`/api/v1/vms/${web.id}/points`)).body).points;
    const point = points.find((x) => x.id === job.result?.pointId);
    expect([point?.method, point?.consistency]).toEqual(['qmp', 'crash']);
    const pd = S.PointDetail.parse((await admin.get(`/api/v1/points/${point?.id ?? ''}`)).body);
    expect(pd.method).toBe('qmp');
    // a body without them: auto consistency, and no method in the spec (the service's default applies when it runs)
    const plain = await admin.post(`/api/v1/vms/${web.id}/backups`, {});
    const plainJob = S.StartBackupResponse.parse(plain.body).job;
    const spec = withCatalog((c) => jobsOf(c).jobSpec(plainJob.id));
    expect(spec).toMatchObject({ kind: 'backup', consistency: 'auto' });
    expect(Object.keys(spec)).not.toContain('method');
    expect((await jobDone(admin, plainJob.id)).state).toBe('succeeded');
  });

  test("the VM list foresees each VM's method: auto → qmp for a running VM the host link reaches, engine for a VM that is down; a policy's method wins", async () => {
    const vms = async (): Promise<Map<string, string>> => new Map(S.VmList.parse((await admin.get('/api/v1/vms')).body).vms.map((v) => [v.name, v.nextMethod]));
    const before = await vms();
    expect([before.get('web01'), before.get('db01')]).toEqual(['qmp', 'engine']);
    const created = await admin.post('/api/v1/policies', policyBody({ name: 'by-engine', selection: { vmIds: [web.id] }, method: 'engine' }));
    expect(created.status).toBe(201);
    const id = S.PolicySaveResponse.parse(created.body).policy.id;
    try {
      // the VM → policies map is reused for a while (30 s): a policy change drops it
      expect((await vms()).get('web01')).toBe('engine');
    } finally {
      await admin.raw('DELETE', `/api/v1/policies/${id}`);
    }
    expect((await vms()).get(db.name)).toBe('engine');
  });

  test('config backup.method is the default of a job whose spec names none (OLVM_BACKUP_METHOD=qmp)', async () => {
    await svc.stop();
    await start({ OLVM_BACKUP_METHOD: 'qmp' });
    const vms = S.VmList.parse((await admin.get('/api/v1/vms')).body).vms;
    // configured qmp: even the VM that is down is foreseen for the qmp method (started paused)
    expect(vms.find((v) => v.name === 'db01')?.nextMethod).toBe('qmp');
    await svc.stop();
    await start();
  });

  test('an engine backup an interrupted job left is settled at start-up; one that cannot be settled is tried again at the next', async () => {
    const jobId = randomUUID();
    const backupId = randomUUID();
    await svc.stop();
    withCatalog((c) => {
      const jobs = jobsOf(c);
      const now = new Date().toISOString();
      const job: Job = {
        id: jobId, kind: 'backup', state: 'queued', vmId: web.id, vmName: 'web01', hostId: null, requestedBy: { id: 'u', name: 'admin@internal' }, forceFull: false,
        restore: null, createdAt: now, startedAt: null, finishedAt: null, cancelRequested: false, progress: null, result: null, error: null,
      };
      jobs.insertJob(job, { v: 1, kind: 'backup', forceFull: false, consistency: 'auto', method: 'engine', lockDays: 0, origin: null });
      jobs.updateJob(jobId, { state: 'running', startedAt: now });
      // what the runner records before it asks the engine for the backup
      jobs.rememberFacts(jobId, { engineBackup: { vmId: web.id, backupId }, engineBackupFinished: false });
    });
    await start();
    const settleLines = async (n: number) =>
      eventually(async () => {
        const log = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${jobId}`)).body).log.filter((l) => l.message.includes(`engine backup ${backupId}`));
        return log.length >= n ? log : undefined;
      }, 30_000);
    const first = await settleLines(1);
    const facts = withCatalog((c) => jobsOf(c).jobFacts(jobId));
    expect(facts.engineBackup).toEqual({ vmId: web.id, backupId });
    // settled (finished) exactly when the line says so; a failure is a warning naming the retry
    expect(facts.engineBackupFinished).toBe(first[0]!.level === 'info');
    if (first[0]!.level === 'warn') {
      expect(first[0]!.message).toMatch(new RegExp(`^could not settle engine backup ${backupId} of vm web01 left by this job \\(tried again at the next start-up\\): `));
      await svc.stop();
      await start();
      const second = await settleLines(2);
      expect(second).toHaveLength(2);
    } else {
      expect(withCatalog((c) => jobsOf(c).unsettledJobs().map((j) => j.id))).not.toContain(jobId);
    }
  });

  const simBackup = (): SimBackupHooks => {
    const hooks = (sim as unknown as { backup?: SimBackupHooks }).backup;
    if (!hooks) throw new Error('the engine simulator has no backup API hooks');
    return hooks;
  };
  /** Faults armed and not yet met: the hooks' transfers keep them (no hook tells it). */
  const pendingImageioFaults = (hooks: SimBackupHooks): number => (hooks as unknown as { transfers: { imageioFaults: unknown[] } }).transfers.imageioFaults.length;
  test('kill -9 while the engine backup is ready and its transfer hangs: the next start finalizes it, and the next backup by the engine method succeeds', async () => {
    const hooks = simBackup();
    hooks.imageioFaultNext('hang');
    const r = await admin.post(`/api/v1/vms/${web.id}/backups`, { method: 'engine' });
    expect(r.status).toBe(202);
    const jobId = S.StartBackupResponse.parse(r.body).job.id;
    // the id the job recorded (facts, then its log) before it asked the engine
    const backupId = await eventually(() => Promise.resolve(withCatalog((c) => jobsOf(c).jobFacts(jobId).engineBackup?.backupId)), 60_000);
    await eventually(() => Promise.resolve(hooks.phase(backupId) === 'ready' ? true : undefined), 60_000);
    // the hang has caught a download of this backup (else it would wait for the next backup's)
    await eventually(() => Promise.resolve(pendingImageioFaults(hooks) === 0 ? true : undefined), 60_000);
    const log = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${jobId}`)).body).log.map((l) => l.message);
    expect(log).toContainEqual(`asking the engine for backup ${backupId} of vm web01`);
    await svc.kill();
    expect(hooks.phase(backupId)).toBe('ready');
    await start();
    const line = await eventually(async () => {
      const l = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${jobId}`)).body).log.find((x) => x.message.includes(`engine backup ${backupId} left by this job`));
      return l;
    }, 120_000);
    expect(line).toMatchObject({ level: 'info', message: expect.stringMatching(new RegExp(`^engine backup ${backupId} left by this job: .*finalized`)) });
    expect(['succeeded', null]).toContain(hooks.phase(backupId));
    const facts = withCatalog((c) => jobsOf(c).jobFacts(jobId));
    expect([facts.engineBackupFinished, (await admin.get(`/api/v1/jobs/${jobId}`)).body.state]).toEqual([true, 'interrupted']);
    // nothing of it is left in the way: the next backup by the engine method runs
    const next = await admin.post(`/api/v1/vms/${web.id}/backups`, { method: 'engine' });
    const done = await jobDone(admin, S.StartBackupResponse.parse(next.body).job.id);
    expect([done.state, done.error, done.result?.method]).toEqual(['succeeded', null, 'engine']);
  }, 300_000);
});
