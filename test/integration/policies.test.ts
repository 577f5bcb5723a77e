import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job, PolicyDetail, PolicyRun } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Catalog } from '../../backend/src/catalog';
import { jobsOf, policiesOf } from '../helpers/stores';
import { EngineClient } from '../../backend/src/engine';
import { EngineSim, type SimVm } from '../engine-sim';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { policyRunDone } from '../helpers/serviceWaits';
import { Repository } from '../../backend/src/repository';
import { readImage } from '../helpers/leasedRead';
import { policyBody, syncJobOfRun } from '../helpers/policyRuns';

const MiB = 1 << 20;
const BIG = 128 * MiB;

type Api = ReturnType<typeof apiClient>;

const body = policyBody;

describe('backup policies through the service (engine simulator, real QEMU, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let user: Api;
  let web: SimVm;
  let db: SimVm;
  let app: SimVm;
  let big: SimVm;

  const svcDir = (): string => path.join(dir, 'svc');
  const start = async (): Promise<void> => {
    svc = await startServiceProcess({ sim, dataDir: svcDir() });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    user = apiClient(svc.url, await ssoToken(sim, 'plain'));
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-pol-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    web = sim.vmByName('web01');
    db = sim.vmByName('db01');
    app = sim.vmByName('app01');
    // a VM whose backup lasts long enough to be killed in the middle
    big = await sim.addVm({ name: 'zz-big01', disks: [{ sizeBytes: BIG, format: 'raw' }], permittedToPlainUser: false });
    const img = await fs.open(big.disks[0]!.file, 'r+');
    try {
      for (let off = 0; off < BIG; off += 8 * MiB) await img.write(randomBytes(8 * MiB), 0, 8 * MiB, off);
    } finally {
      await img.close();
    }
    const engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    try {
      await engine.addTag({ name: 'restart' });
      await engine.assignTag(app.id, { name: 'restart' });
      await engine.assignTag(big.id, { name: 'restart' });
    } finally {
      await engine.close();
    }
    await start();
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function detail(id: string): Promise<PolicyDetail> {
    const r = await admin.get(`/api/v1/policies/${id}`);
    expect(r.status).toBe(200);
    return S.PolicyDetail.parse(r.body);
  }

  const runDone = (policyId: string, runId: string): Promise<PolicyRun> => policyRunDone(admin, policyId, runId, 180_000);

  function jobsOfRun(runId: string): Job[] {
    const c = Catalog.open(path.join(svcDir(), 'catalog.sqlite'));
    try {
      return jobsOf(c).listJobs({ limit: 500 }).jobs.filter((j) => { const spec = jobsOf(c).jobSpec(j.id); return spec.kind === 'backup' && spec.origin?.runId === runId; });
    } finally {
      c.close();
    }
  }

  test('bad input: a bad cron, an unknown time zone, an unknown tag, an unknown field, a bad selection → 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [body({ schedule: '61 * * * *' }), /^request body\.schedule: .*minute/],
      [body({ schedule: '* * * * * *' }), /^request body\.schedule: must be a 5-field cron/],
      [body({ verifySchedule: '0 4 * * 8' }), /^request body\.verifySchedule: /],
      [body({ timeZone: 'Mars/Olympus' }), /^request body\.timeZone: "Mars\/Olympus" is not an IANA time zone/],
      [body({ selection: { tag: 'no-such-tag' } }), /^request body\.selection\.tag: the engine has no tag "no-such-tag"/],
      [body({ retentionDays: 3 }), /^request body: unknown field "retentionDays"/],
      [body({ selection: { tag: 'daily', search: 'name=web*' } }), /^request body\.selection: must be one of/],
      [body({ concurrency: 0 }), /^request body\.concurrency: /],
      [body({ selection: { search: 'flavour=big' } }), /^request body\.selection\.search: the engine refused the search/],
      [body({ selection: { vmIds: ['00000000-0000-4000-8000-000000000000'] } }), /^request body\.selection\.vmIds\.0: vm .* not found/],
    ];
    for (const [b, msg] of cases) {
      const r = await admin.post('/api/v1/policies', b);
      expect([r.status, r.body?.error?.code, r.body?.error?.message]).toEqual([400, 'BAD_REQUEST', expect.stringMatching(msg)]);
    }
    const list = await admin.get('/api/v1/policies');
    expect(list.body).toEqual({ policies: [] });
  });

  test('a policy by tag "daily" selects exactly the tagged vms and backs them up on "run now"; preview, overlap warning, visibility, metrics, events', async () => {
    const created = await admin.post('/api/v1/policies', body({ name: 'nightly', concurrency: 2 }));
    expect(created.status).toBe(201);
    const saved = S.PolicySaveResponse.parse(created.body);
    expect(saved.warnings).toEqual([]);
    const p = saved.policy;
    // the next 5 fire times, in the policy's zone: January 1st 03:00 CET = 02:00 UTC
    expect(p.nextRuns).toHaveLength(5);
    expect(p.nextRuns[0]).toMatchObject({ at: expect.stringMatching(/-01-01T02:00:00\.000Z$/), local: expect.stringMatching(/-01-01 03:00 GMT\+1$/) });

    // a second policy selecting web01 again is saved, with the overlap reported
    const second = await admin.post('/api/v1/policies', body({ name: 'web-only', selection: { vmIds: [web.id] } }));
    expect(second.status).toBe(201);
    expect(S.PolicySaveResponse.parse(second.body).warnings).toEqual([{ code: 'overlap', message: expect.stringContaining('"nightly"') }]);

    // the VM list names each VM's policies: a VM in none is flagged by an empty list
    const vms = S.VmList.parse((await admin.get('/api/v1/vms')).body).vms;
    expect(Object.fromEntries(vms.map((v) => [v.name, v.policies]))).toMatchObject({ web01: ['nightly', 'web-only'], db01: ['nightly'], app01: [] });

    // the plain user sees web01 only: the tag policy (web01 + db01) does not exist for them
    const theirs = await user.get('/api/v1/policies');
    expect(theirs.status).toBe(200);
    expect(S.PolicyList.parse(theirs.body).policies.map((x) => x.name)).toEqual(['web-only']);
    expect((await user.get(`/api/v1/policies/${p.id}`)).status).toBe(404);
    expect((await user.post(`/api/v1/policies/${p.id}/run`)).status).toBe(404);
    // a selection by tag is for backup admins: refused before the engine is asked what it means
    // (the answer says nothing about how many vms it would select)
    const sneaky = await user.post('/api/v1/policies', body({ name: 'sneaky' }));
    expect([sneaky.status, sneaky.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect(sneaky.body.error.message).toMatch(/^only a backup admin .* may select vms by tag/);
    expect(sneaky.body.error.message).not.toMatch(/\d+ vm/);

    const ran = await admin.post(`/api/v1/policies/${p.id}/run`);
    expect(ran.status).toBe(202);
    const run = S.PolicyRunResponse.parse(ran.body).run;
    expect(run).toMatchObject({ trigger: 'manual', scheduledAt: null, policyName: 'nightly' });
    const again = await admin.post(`/api/v1/policies/${p.id}/run`);
    expect([again.status, again.body.error.code]).toEqual([409, 'JOB_CONFLICT']);

    const done = await runDone(p.id, run.id);
    expect(done.state).toBe('succeeded');
    expect(done.vms.map((v) => [v.vmName, v.state, v.attempts]).sort()).toEqual([
      ['db01', 'succeeded', 1],
      ['web01', 'succeeded', 1],
    ]);
    const jobs = jobsOfRun(run.id);
    expect(jobs.map((j) => j.vmName).sort()).toEqual(['db01', 'web01']);
    // the run in the list of recent runs (not for the plain user: db01 is not theirs)
    const runs = S.PolicyRunList.parse((await admin.get('/api/v1/policy-runs?limit=10')).body).runs;
    expect(runs.find((r) => r.id === run.id)).toMatchObject({ state: 'succeeded', policyName: 'nightly' });
    expect(S.PolicyRunList.parse((await user.get('/api/v1/policy-runs')).body).runs.find((r) => r.id === run.id)).toBeUndefined();
    expect((await admin.get('/api/v1/policy-runs?limit=0')).status).toBe(400);
    expect(jobs.every((j) => j.state === 'succeeded' && j.requestedBy.name === 'policy nightly')).toBe(true);

    // the run's outcome in the engine's event log, and in the metrics
    const summary = sim.events().find((e) => e.origin === 'olvm-backup' && e.description.includes('policy "nightly" (manual run) finished'));
    expect(summary).toMatchObject({ severity: 'normal', description: expect.stringContaining('2 succeeded, 0 failed, 0 skipped') });
    const metrics = await admin.get('/metrics');
    expect(metrics.body).toContain('olvm_backup_policy_runs_total{policy="nightly",trigger="manual"} 1');
    expect(metrics.body).toContain('olvm_backup_policy_vm_outcomes_total{policy="nightly",outcome="succeeded"} 2');

    // PUT replaces, DELETE removes (history of runs stays in the catalog)
    const put = await admin.raw('PUT', `/api/v1/policies/${p.id}`, body({ name: 'nightly', enabled: false, selection: { tag: 'weekly' } }));
    expect(put.status).toBe(200);
    const changed = S.PolicySaveResponse.parse(put.body);
    expect(changed.policy).toMatchObject({ enabled: false, selection: { tag: 'weekly' }, nextRuns: [] });
    expect(changed.warnings.map((w) => w.code)).toEqual(['disabled']);
    expect((await admin.raw('DELETE', `/api/v1/policies/${p.id}`)).status).toBe(204);
    expect((await admin.get(`/api/v1/policies/${p.id}`)).status).toBe(404);
    expect((await admin.raw('DELETE', `/api/v1/policies/${S.PolicySaveResponse.parse(second.body).policy.id}`)).status).toBe(204);
  });

  test('SIGKILL of the service in the middle of a run: after the restart the finished vm is not repeated and the rest is backed up', async () => {
    const created = await admin.post('/api/v1/policies', body({ name: 'restart', selection: { tag: 'restart' }, concurrency: 1 }));
    expect(created.status).toBe(201);
    const p = S.PolicySaveResponse.parse(created.body).policy;
    const run = S.PolicyRunResponse.parse((await admin.post(`/api/v1/policies/${p.id}/run`)).body).run;
    // app01 first (names in order), then zz-big01: kill while the big one is being copied
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = (await detail(p.id)).runs.find((x) => x.id === run.id)!;
      const [first, second] = r.vms;
      if (first?.state === 'succeeded' && second?.state === 'running') break;
      if (first?.state === 'failed' || second?.state === 'succeeded' || Date.now() > deadline) throw new Error(`cannot catch the run in the middle: ${JSON.stringify(r.vms)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    await svc.kill();
    await start();
    const done = await runDone(p.id, run.id);
    if (done.state !== 'succeeded') throw new Error(`${JSON.stringify(done.vms)}\n${svc.logs().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-15).join('\n')}`);
    expect(done.vms.map((v) => [v.vmName, v.state, v.attempts])).toEqual([
      ['app01', 'succeeded', 1],
      ['zz-big01', 'succeeded', 2],
    ]);
    const jobs = jobsOfRun(run.id);
    expect(jobs.filter((j) => j.vmId === app.id).map((j) => j.state)).toEqual(['succeeded']);
    expect(jobs.filter((j) => j.vmId === big.id).map((j) => j.state).sort()).toEqual(['interrupted', 'succeeded']);
    expect(db.id).not.toBe(big.id);
  });

  test('a policy runs on its own at its fire time (every minute), marked schedule', async () => {
    const b = body({ name: 'minutely', schedule: '* * * * *', timeZone: 'UTC', selection: { vmIds: [app.id] } });
    const p = S.PolicySaveResponse.parse((await admin.post('/api/v1/policies', b)).body).policy;
    expect(new Date(p.nextRuns[1]!.at).getTime() - new Date(p.nextRuns[0]!.at).getTime()).toBe(60_000);
    let runs: PolicyRun[] = [];
    const deadline = Date.now() + 75_000;
    while (runs.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      runs = (await detail(p.id)).runs;
    }
    // no more fire times: the test needs one
    expect((await admin.raw('PUT', `/api/v1/policies/${p.id}`, { ...b, enabled: false })).status).toBe(200);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: 'schedule', scheduledAt: p.nextRuns[0]!.at, missedRuns: 0 });
    const done = await runDone(p.id, runs[0]!.id);
    expect(done.vms.map((v) => [v.vmName, v.state])).toEqual([['app01', 'succeeded']]);
  }, 150_000);

  test("a policy's verify schedule verifies every point of its vms on its own (every minute): a verify job per vm, an engine event", async () => {
    const pointsOfApp = S.PointList.parse((await admin.get(`/api/v1/vms/${app.id}/points`)).body).points.length;
    expect(pointsOfApp).toBeGreaterThan(0); // from the test before
    const b = body({ name: 'verifier', schedule: '0 3 1 1 *', verifySchedule: '* * * * *', timeZone: 'UTC', selection: { vmIds: [app.id] } });
    const p = S.PolicySaveResponse.parse((await admin.post('/api/v1/policies', b)).body).policy;
    expect(p.verifySchedule).toBe('* * * * *');
    expect(Date.parse(p.nextVerify!.at) - Date.now()).toBeLessThanOrEqual(60_000);
    let job: Job | undefined;
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline) {
      const jobs = S.JobList.parse((await admin.get(`/api/v1/jobs?vmId=${app.id}&limit=50`)).body).jobs;
      job = jobs.find((j) => j.kind === 'verify' && j.requestedBy.name === 'the verify scheduler' && !['queued', 'running'].includes(j.state));
      if (job) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect((await admin.raw('PUT', `/api/v1/policies/${p.id}`, { ...b, enabled: false })).status).toBe(200);
    expect(job).toMatchObject({ state: 'succeeded', vmId: app.id, result: { verified: { points: pointsOfApp, damaged: [] } } });
    const log = S.JobDetail.parse((await admin.get(`/api/v1/jobs/${job!.id}`)).body).log.map((l) => l.message);
    expect(log).toContain('verifying every chunk of every restore point of app01');
    const deadlineEv = Date.now() + 10_000;
    while (!sim.events().some((e) => e.description.includes('policy "verifier": scheduled verify of vm app01')) && Date.now() < deadlineEv) await new Promise((r) => setTimeout(r, 200));
    expect(sim.events().filter((e) => e.description.includes('policy "verifier": scheduled verify of vm app01')).map((e) => [e.severity, e.description])).toContainEqual(['normal', `olvm-backup policy "verifier": scheduled verify of vm app01: ${pointsOfApp} restore point(s) checked, every chunk whole`]);
  }, 200_000);

  test('a fire time missed while the service was down runs once at start-up, marked catch-up', async () => {
    const created = await admin.post('/api/v1/policies', body({ name: 'missed', schedule: '0 3 * * *', timeZone: 'UTC', selection: { vmIds: [web.id] } }));
    const p = S.PolicySaveResponse.parse(created.body).policy;
    await svc.stop();
    // "the last run" far in the past, as if the service had been down since
    const c = Catalog.open(path.join(svcDir(), 'catalog.sqlite'));
    try {
      policiesOf(c).setFiredThrough(p.id, '2026-01-01T00:00:00.000Z');
    } finally {
      c.close();
    }
    await start();
    let runs: PolicyRun[] = [];
    const deadline = Date.now() + 30_000;
    while (runs.length === 0 && Date.now() < deadline) {
      runs = (await detail(p.id)).runs;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    const now = new Date();
    const last03 = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3));
    if (last03 > now) last03.setUTCDate(last03.getUTCDate() - 1);
    expect(run).toMatchObject({ trigger: 'catch-up', scheduledAt: last03.toISOString(), missedRuns: expect.any(Number) });
    expect(run.missedRuns).toBeGreaterThan(0);
    const done = await runDone(p.id, run.id);
    expect(done.vms.map((v) => [v.vmName, v.state])).toEqual([['web01', 'succeeded']]);
    expect(sim.events().some((e) => e.severity === 'warning' && e.description.includes('policy "missed": the run due at') && e.description.includes('running it now'))).toBe(true);
    // another restart does not run it again
    await svc.stop();
    await start();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await detail(p.id)).runs).toHaveLength(1);
  });
  test('after a run, the new point gets the policy\'s retention lock and the vm is pruned by its rules (older points of the vm go)', async () => {
    const before = (await admin.get(`/api/v1/vms/${web.id}/points`)).body.points as Array<{ id: string }>;
    expect(before.length).toBeGreaterThanOrEqual(2);
    const b = body({ name: 'keep-one', selection: { vmIds: [web.id] }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, lockDays: 2 });
    const p = S.PolicySaveResponse.parse((await admin.post('/api/v1/policies', b)).body).policy;
    const run = S.PolicyRunResponse.parse((await admin.post(`/api/v1/policies/${p.id}/run`)).body).run;
    const done = await runDone(p.id, run.id);
    expect(done.state).toBe('succeeded');
    const pointId = jobsOfRun(run.id)[0]!.result!.pointId;
    let after: Array<{ id: string; lockedUntil: string | null }> = [];
    const deadline = Date.now() + 30_000;
    do {
      await new Promise((r) => setTimeout(r, 300));
      after = (await admin.get(`/api/v1/vms/${web.id}/points`)).body.points;
    } while ((after.length !== 1 || after[0]!.lockedUntil === null) && Date.now() < deadline);
    expect(after.map((x) => x.id)).toEqual([pointId]);
    const lockedFor = Date.parse(after[0]!.lockedUntil!) - Date.now();
    expect(lockedFor).toBeGreaterThan(2 * 86_400_000 - 120_000);
    expect(lockedFor).toBeLessThanOrEqual(2 * 86_400_000);
  });

  test("a policy's syncTo copies each backed-up vm's new point into the off-site repository (a sync job): byte-exact, with its lock", async () => {
    const offsite = path.join(dir, 'offsite');
    await (await Repository.init(offsite, { version: 2 })).close();
    const relative = await admin.post('/api/v1/policies', body({ selection: { vmIds: [db.id] }, syncTo: 'offsite' }));
    expect([relative.status, JSON.stringify(relative.body)]).toEqual([400, expect.stringContaining('syncTo') as unknown]);
    const b = body({ name: 'offsite-copy', selection: { vmIds: [db.id] }, retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, lockDays: 1, syncTo: offsite });
    const p = S.PolicySaveResponse.parse((await admin.post('/api/v1/policies', b)).body).policy;
    expect(p.syncTo).toBe(offsite);
    const run = S.PolicyRunResponse.parse((await admin.post(`/api/v1/policies/${p.id}/run`)).body).run;
    expect((await runDone(p.id, run.id)).state).toBe('succeeded');
    const pointId = jobsOfRun(run.id)[0]!.result!.pointId;
    // the sync job the run's end queued
    const sync = await syncJobOfRun(svcDir(), run.id);
    expect([sync?.state, sync?.error]).toEqual(['succeeded', null]);
    expect(sync?.result?.synced?.copied).toContain(pointId);
    const src = await Repository.open(path.join(svcDir(), 'repository'));
    const dst = await Repository.open(offsite);
    try {
      const [a, c] = [await src.readManifest(pointId), await dst.readManifest(pointId)];
      expect(c.lockedUntil).toBe(a.lockedUntil);
      expect(a.lockedUntil).not.toBeNull();
      expect([c.vm, c.createdAt, c.meta]).toEqual([a.vm, a.createdAt, a.meta]);
      for (const d of a.disks) expect((await readImage(dst, pointId, d.device)).equals(await readImage(src, pointId, d.device))).toBe(true);
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }
  });
});
