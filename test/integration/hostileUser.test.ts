import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { EngineSim, type SimUserKey, type SimVm } from '../engine-sim';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { eventually, jobDone, policyRunDone } from '../helpers/serviceWaits';

/**
 * A hostile user against the running service (engine simulator, real QEMU): for each row of the
 * authorization table (README, "Who may do what") a user lacking the permit is refused with 403
 * naming the permit — and nothing changes: no job, no point, no lock, nothing in the engine —
 * while a user holding it succeeds. Objects the caller may not see stay unseen (404, the same
 * answer as for an id nobody has), searches by the service account are no inventory oracle, a
 * failing permission lookup denies, and a viewer cannot cancel an admin's verify.
 */

type Api = ReturnType<typeof apiClient>;
const UUID_NOBODY = '0badc0de-0000-4000-8000-000000000000';

describe('a hostile user against the service: engine permits decide every action', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  const api = {} as Record<SimUserKey, Api>;
  let web: SimVm;
  let db: SimVm;
  let point: string;
  /** The grants the tests take away and give back (the seed's: accounts.ts grantSeedRoles). */
  const OPERATOR_ON_WEB = () => ({ role: 'UserVmManager', to: 'operator@internal', on: { kind: 'vm' as const, id: web.id } });
  const USER1_ON_WEB = () => ({ role: 'UserRole', to: 'user1@internal', on: { kind: 'vm' as const, id: web.id } });

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-hostile-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: false });
    // one job at a time: a second one stays queued, so cancels are deterministic; backup admins
    // by group; permits asked again after 1 s (revocations are seen at once)
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), minLockDays: 7, extraArgs: ['--limit-global', '1', '--limit-per-host', '1', '--backup-admin', 'olvm-backup-admins', '--permit-cache-seconds', '1', '--heartbeat-seconds', '5'] });
    for (const who of ['admin', 'plain', 'viewer', 'operator', 'creator', 'diskop', 'grpop', 'backupadmin', 'roadmin'] as const) api[who] = apiClient(svc.url, await ssoToken(sim, who));
    web = sim.vmByName('web01');
    db = sim.vmByName('db01');
    const first = await api.admin.post(`/api/v1/vms/${web.id}/backups`);
    expect(first.status).toBe(202);
    point = (await jobDone(api.admin, first.body.job.id)).result!.pointId;
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** What a refusal must leave as it was: jobs, points and their locks, the engine's VMs and disks. */
  async function state(): Promise<string> {
    const jobs = (await api.admin.get('/api/v1/jobs?limit=500')).body.jobs.map((j: Job) => `${j.id}:${j.state}`);
    const points = (await api.admin.get(`/api/v1/vms/${web.id}/points`)).body.points.map((p: { id: string; lockedUntil: string | null }) => `${p.id}:${p.lockedUntil}`);
    const engine = sim.vmIds().map((id) => `${id}:${sim.vmById(id).disks.map((d) => d.id).join(',')}`);
    const policies = (await api.admin.get('/api/v1/policies')).body.policies.map((p: { id: string }) => p.id);
    return JSON.stringify({ jobs: jobs.sort(), points, engine: engine.sort(), policies });
  }

  /** 403 FORBIDDEN naming `permit`, and nothing changed. */
  async function refused(call: () => Promise<{ status: number; body: any }>, permit: RegExp): Promise<void> {
    const before = await state();
    const r = await call();
    expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(r.body.error.message).toMatch(permit);
    expect(await state()).toBe(before);
  }

  test('Backup now needs backup_disk on the VM: a viewer, a disk operator, a plain user, a read-only admin are refused; an operator and a group member succeed', async () => {
    for (const who of ['viewer', 'diskop', 'plain', 'roadmin'] as const) await refused(() => api[who].post(`/api/v1/vms/${web.id}/backups`), /backup_disk on vm web01/);
    const ok = await api.operator.post(`/api/v1/vms/${web.id}/backups`);
    expect(ok.status).toBe(202);
    expect((await jobDone(api.operator, ok.body.job.id)).state).toBe('succeeded');
    // through the group backup-operators (UserVmManager on db01)
    const grp = await api.grpop.post(`/api/v1/vms/${db.id}/backups`);
    expect(grp.status).toBe(202);
    expect((await jobDone(api.grpop, grp.body.job.id)).state).toBe('succeeded');
    // a VM the caller may not see is not there at all: 404, as for an id nobody has
    const hidden = await api.grpop.post(`/api/v1/vms/${web.id}/backups`);
    const nobody = await api.grpop.post(`/api/v1/vms/${UUID_NOBODY}/backups`);
    expect([hidden.status, hidden.body.error.code]).toEqual([404, 'NOT_FOUND']);
    expect([nobody.status, nobody.body.error.code]).toEqual([404, 'NOT_FOUND']);
  });

  test('every point is committed locked (minimum 7 days), Backup now included; no route shortens or removes a lock', async () => {
    const points = S.PointList.parse((await api.admin.get(`/api/v1/vms/${web.id}/points`)).body).points;
    for (const p of points) {
      expect(p.lockedUntil).not.toBeNull();
      const days = (Date.parse(p.lockedUntil!) - Date.parse(p.completedAt)) / 86_400_000;
      expect(days).toBeGreaterThan(6.99);
    }
    for (const m of ['DELETE', 'PUT', 'PATCH']) expect((await api.admin.raw(m, `/api/v1/points/${point}`, m === 'DELETE' ? undefined : { lockedUntil: null })).status).toBe(404);
  });

  test('Verify a point needs backup_disk; the repository verify is for backup admins; a viewer cannot cancel an admin\'s verify', async () => {
    await refused(() => api.viewer.post(`/api/v1/points/${point}/verify`), /backup_disk on vm web01/);
    await refused(() => api.viewer.post('/api/v1/repository/verify'), /backup admin/);
    // the admin's repository verify, queued behind a backup (one job at a time)
    const busy = await api.admin.post(`/api/v1/vms/${db.id}/backups`, { full: true });
    const verify = await api.admin.post('/api/v1/repository/verify');
    expect(verify.status).toBe(202);
    await refused(() => api.viewer.post(`/api/v1/jobs/${verify.body.job.id}/cancel`), /backup admin/);
    await refused(() => api.viewer.post(`/api/v1/jobs/${busy.body.job.id}/cancel`), /backup admin/);
    // a job of a VM the caller may not see does not exist for them
    expect((await api.operator.post(`/api/v1/jobs/${busy.body.job.id}/cancel`)).status).toBe(404);
    // backupadmin is one through its group (auth.backupAdmins: olvm-backup-admins)
    expect((await api.backupadmin.get('/api/v1/whoami')).body).toMatchObject({ backupAdmin: true });
    expect((await api.viewer.get('/api/v1/whoami')).body).toMatchObject({ backupAdmin: false });
    expect((await jobDone(api.admin, verify.body.job.id)).state).toBe('succeeded');
    expect((await jobDone(api.admin, busy.body.job.id)).state).toBe('succeeded');
    const mine = await api.operator.post(`/api/v1/points/${point}/verify`);
    expect(mine.status).toBe(202);
    await jobDone(api.operator, mine.body.job.id);
  });

  test('cancelling one\'s own queued backup takes backup_disk; someone else\'s, a backup admin', async () => {
    const running = await api.admin.post(`/api/v1/vms/${db.id}/backups`, { full: true });
    const queued = await api.operator.post(`/api/v1/vms/${web.id}/backups`);
    expect(queued.body.job.state).toBe('queued');
    await refused(() => api.viewer.post(`/api/v1/jobs/${queued.body.job.id}/cancel`), /backup admin/);
    const cancelled = await api.operator.post(`/api/v1/jobs/${queued.body.job.id}/cancel`);
    expect([cancelled.status, cancelled.body.state]).toEqual([200, 'cancelled']);
    expect((await api.backupadmin.post(`/api/v1/jobs/${running.body.job.id}/cancel`)).status).toBe(200);
    expect((await jobDone(api.admin, running.body.job.id)).state).toBe('cancelled');
  });

  test('a download needs backup_disk on the VM and edit_disk_properties on the disk; its link stops when its user loses either', async () => {
    const disk = S.PointDetail.parse((await api.admin.get(`/api/v1/points/${point}`)).body).disks[0]!;
    const url = `/api/v1/points/${point}/disks/${disk.device}/download`;
    await refused(() => api.viewer.post(url), /backup_disk on vm web01.*edit_disk_properties on disk/);
    await refused(() => api.diskop.post(url), /backup_disk on vm web01/);
    await refused(() => api.creator.post(url), /backup_disk on vm web01/);
    const ticket = await api.operator.post(url);
    expect(ticket.status).toBe(201);
    const got = await fetch(`${svc.url}${ticket.body.url}`, { headers: { Range: 'bytes=0-1048575' } });
    expect(got.status).toBe(206);
    expect((await got.arrayBuffer()).byteLength).toBe(1 << 20);
    // the operator loses UserVmManager on web01: the link they hold stops working
    expect(sim.revoke(OPERATOR_ON_WEB())).toBe(1);
    try {
      await eventually(async () => ((await fetch(`${svc.url}${ticket.body.url}`, { headers: { Range: 'bytes=0-0' } })).status === 403 ? true : undefined), 10_000);
    } finally {
      sim.grant(OPERATOR_ON_WEB());
    }
  });

  test('a download link lives with the token it was issued to: once the engine refuses that token (logout), the link answers 401 and is forgotten', async () => {
    const disk = S.PointDetail.parse((await api.admin.get(`/api/v1/points/${point}`)).body).disks[0]!;
    const mine = apiClient(svc.url, await ssoToken(sim, 'operator'));
    const ticket = await mine.post(`/api/v1/points/${point}/disks/${disk.device}/download`);
    expect(ticket.status).toBe(201);
    const link = `${svc.url}${ticket.body.url}`;
    expect((await fetch(link, { headers: { Range: 'bytes=0-0' } })).status).toBe(206);
    sim.expireTokens('operator@internal');
    try {
      // the service learns of the logout from the token's next request to the engine; the link,
      // whose permits are still cached, must not go on under the identity it was issued with
      expect((await mine.get('/api/v1/vms')).status).toBe(401);
      const refusedLink = await fetch(link, { headers: { Range: 'bytes=0-0' } });
      expect(refusedLink.status).toBe(401);
      expect(((await refusedLink.json()) as { error: { code: string } }).error.code).toBe('AUTH_INVALID');
      expect((await fetch(link, { headers: { Range: 'bytes=0-0' } })).status).toBe(404);
    } finally {
      api.operator = apiClient(svc.url, await ssoToken(sim, 'operator'));
    }
  });

  test('restore as a new VM needs create_vm on the cluster and create_disk on the storage domains; the plan offers a user only those', async () => {
    const body = { mode: 'vm', vmName: 'web01-by-creator' };
    const viewerPlan = S.RestorePlanView.parse((await api.viewer.post(`/api/v1/points/${point}/restore/plan`, body)).body);
    expect(viewerPlan.targets).toMatchObject({ clusters: [], storageDomains: [] });
    // the plan of a user who may create nowhere names no cluster or domain of the engine's
    expect(viewerPlan).toMatchObject({ ok: false, vm: null, disks: [] });
    expect(JSON.stringify(viewerPlan)).not.toMatch(/Default|data1|data2/);
    await refused(() => api.viewer.post(`/api/v1/points/${point}/restore`, body), /no create_vm on any cluster, create_disk on any storage domain$/);
    await refused(() => api.operator.post(`/api/v1/points/${point}/restore`, body), /no create_vm on any cluster$/);
    // the operator may create disks on data1 only: their plan puts every disk there and names no other domain
    const operatorPlan = S.RestorePlanView.parse((await api.operator.post(`/api/v1/points/${point}/restore/plan`, { mode: 'disks', attachToVmId: web.id })).body);
    expect(operatorPlan.targets.storageDomains.map((s) => s.name)).toEqual(['data1']);
    expect(operatorPlan.disks.map((d) => d.storageDomainName)).toEqual(operatorPlan.disks.map(() => 'data1'));
    expect(JSON.stringify(operatorPlan)).not.toMatch(/data2/);
    const creatorPlan = S.RestorePlanView.parse((await api.creator.post(`/api/v1/points/${point}/restore/plan`, body)).body);
    expect(creatorPlan.targets.clusters.length).toBe(1);
    expect(creatorPlan.targets.storageDomains.map((s) => s.name).sort()).toEqual(['data1', 'data2']);
    const started = await api.creator.post(`/api/v1/points/${point}/restore`, body);
    expect(started.status).toBe(202);
    expect((await jobDone(api.creator, started.body.job.id)).state).toBe('succeeded');
    expect(sim.vmIds().some((id) => sim.vmById(id).name === 'web01-by-creator')).toBe(true);
    // bringing a VM back under its own ids is for backup admins
    await refused(() => api.creator.post(`/api/v1/points/${point}/restore`, { mode: 'vm', regenerateIds: false }), /backup admin/);
  });

  test('restoring disks into a VM needs configure_vm_storage on it and create_disk on the domain', async () => {
    const data1 = sim.inventory().storageDomains.find((s) => s.name === 'data1')!.id;
    const disks = S.PointDetail.parse((await api.admin.get(`/api/v1/points/${point}`)).body).disks.map((d) => ({ device: d.device, include: true, storageDomainId: data1 }));
    const body = { mode: 'disks', attachToVmId: web.id, disks };
    // a domain asked for by id that the caller may not use is named by that id, not its name
    await refused(() => api.viewer.post(`/api/v1/points/${point}/restore`, body), new RegExp(`no create_disk on storage domain ${data1}, configure_vm_storage on vm web01$`));
    await refused(() => api.creator.post(`/api/v1/points/${point}/restore`, body), /configure_vm_storage on vm web01/);
    const started = await api.operator.post(`/api/v1/points/${point}/restore`, body);
    expect(started.status).toBe(202);
    expect((await jobDone(api.operator, started.body.job.id)).state).toBe('succeeded');
    // the same into data2, where the operator may not create disks
    const data2 = sim.inventory().storageDomains.find((s) => s.name === 'data2')!.id;
    await refused(() => api.operator.post(`/api/v1/points/${point}/restore`, { ...body, disks: disks.map((d) => ({ ...d, storageDomainId: data2 })) }), new RegExp(`no create_disk on storage domain ${data2}$`));
  });

  test('a restore plan is no oracle: a VM the caller may not see as a target is not found, as one nobody has; its points do not exist for them', async () => {
    const plan = (vm: string) => api.plain.post(`/api/v1/points/${point}/restore/plan`, { mode: 'disks', attachToVmId: vm });
    const hidden = await plan(db.id);
    const nobody = await plan(UUID_NOBODY);
    expect([hidden.status, hidden.body.error.code, hidden.body.error.message.replace(db.id, 'X')]).toEqual([nobody.status, nobody.body.error.code, nobody.body.error.message.replace(UUID_NOBODY, 'X')]);
    expect(hidden.status).toBe(404);
    // the targets it offers are the VMs the caller sees (user1: web01), never db01 or app01
    const own = S.RestorePlanView.parse((await api.plain.post(`/api/v1/points/${point}/restore/plan`, { mode: 'disks' })).body);
    expect(own.targets.vms.map((v) => v.name)).toEqual(['web01']);
    expect(JSON.stringify(own)).not.toMatch(/db01|app01/);
    const dbPoints = (await api.admin.get(`/api/v1/vms/${db.id}/points`)).body.points as Array<{ id: string }>;
    expect(dbPoints.length).toBeGreaterThan(0);
    for (const path of [`/api/v1/points/${dbPoints[0]!.id}`, `/api/v1/vms/${db.id}/points`]) expect((await api.plain.get(path)).status).toBe(404);
  });

  const policy = (selection: unknown, extra: Record<string, unknown> = {}) => ({
    name: `p-${Math.random().toString(36).slice(2, 8)}`,
    schedule: '0 3 * * *',
    timeZone: 'UTC',
    selection,
    retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    lockDays: 0,
    concurrency: 1,
    window: null,
    enabled: true,
    ...extra,
  });

  test('policies: by id with backup_disk on every VM; by tag or search, retention that deletes, a lock of its own — backup admins only; no inventory oracle', async () => {
    await refused(() => api.viewer.post('/api/v1/policies', policy({ vmIds: [web.id] })), /backup_disk on vm web01/);
    // backup_disk on db01 (granted now) but not on web01: the policy of both is refused, naming web01
    const onDb = sim.grant({ role: 'UserVmManager', to: 'viewer@internal', on: { kind: 'vm', id: db.id } });
    try {
      // a refusal naming db01 too is the permit cache's older answer: ask until it has expired
      // (--permit-cache-seconds 1); every answer is a refusal, so asking again changes nothing
      const both = () => api.viewer.post('/api/v1/policies', policy({ vmIds: [web.id, db.id] }));
      await eventually(async () => ((await both()).body?.error?.message as string | undefined)?.endsWith('no backup_disk on vm web01') || undefined, 10_000);
      await refused(both, /no backup_disk on vm web01$/);
    } finally {
      sim.revoke(onDb);
    }
    for (const sel of [{ tag: 'daily' }, { search: 'name=*' }, { search: 'this is no search' }]) {
      const r = await api.operator.post('/api/v1/policies', policy(sel));
      expect([r.status, r.body.error.code]).toEqual([403, 'FORBIDDEN']);
      // says what is missing, nothing about what the selection would mean
      expect(r.body.error.message).not.toMatch(/\d+ vm|selects|web01|db01|app01|no tag/);
      const preview = await api.operator.post('/api/v1/policies/retention-preview', { selection: sel, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, timeZone: 'UTC' });
      expect(preview.status).toBe(403);
    }
    await refused(() => api.operator.post('/api/v1/policies', policy({ vmIds: [web.id] }, { retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 } })), /retention rules that delete points/);
    await refused(() => api.operator.post('/api/v1/policies', policy({ vmIds: [web.id] }, { lockDays: 30 })), /retention lock of its own/);
    // a VM the caller may not see answers as one that does not exist
    const hidden = await api.plain.post('/api/v1/policies', policy({ vmIds: [db.id] }));
    const nobody = await api.plain.post('/api/v1/policies', policy({ vmIds: [UUID_NOBODY] }));
    expect([hidden.status, hidden.body.error.code, hidden.body.error.message.replace(db.id, 'X')]).toEqual([nobody.status, nobody.body.error.code, nobody.body.error.message.replace(UUID_NOBODY, 'X')]);
    const ok = await api.operator.post('/api/v1/policies', policy({ vmIds: [web.id] }));
    expect(ok.status).toBe(201);
    // an admin's tag policy is not a viewer's to change, run or delete (the viewer sees its VMs);
    // for the operator, who does not see db01, it does not exist
    const admins = await api.admin.post('/api/v1/policies', policy({ tag: 'daily' }, { retention: { keepLast: 5, daily: 0, weekly: 0, monthly: 0, yearly: 0 } }));
    expect(admins.status).toBe(201);
    await refused(() => api.viewer.post(`/api/v1/policies/${admins.body.policy.id}/run`), /backup admin/);
    await refused(() => api.viewer.raw('DELETE', `/api/v1/policies/${admins.body.policy.id}`), /backup admin/);
    await refused(() => api.viewer.raw('PUT', `/api/v1/policies/${admins.body.policy.id}`, policy({ vmIds: [web.id] })), /backup admin/);
    expect((await api.operator.post(`/api/v1/policies/${admins.body.policy.id}/run`)).status).toBe(404);
    expect((await api.admin.raw('DELETE', `/api/v1/policies/${admins.body.policy.id}`)).status).toBe(204);
  });

  test("a policy runs with its owner's last-known rights: a VM the owner lost backup_disk on is skipped with the reason", async () => {
    const created = await api.operator.post('/api/v1/policies', policy({ vmIds: [web.id] }));
    expect(created.status).toBe(201);
    expect(sim.revoke(OPERATOR_ON_WEB())).toBe(1);
    try {
      const run = await api.admin.post(`/api/v1/policies/${created.body.policy.id}/run`);
      expect(run.status).toBe(202);
      const done = await policyRunDone(api.admin, created.body.policy.id, run.body.run.id);
      expect(done.vms).toEqual([expect.objectContaining({ vmId: web.id, state: 'skipped', reason: expect.stringContaining('no longer holds backup_disk') })]);
    } finally {
      sim.grant(OPERATOR_ON_WEB());
    }
  });

  test('fail open is refused: a tag gone from under an admin policy fails its run instead of selecting anything', async () => {
    const tag = await api.admin.post('/api/v1/policies', policy({ tag: 'weekly' }));
    expect(tag.status).toBe(201);
    const tags = await fetch(`${sim.baseUrl}/api/tags`, { headers: { Accept: 'application/json', Authorization: `Bearer ${await ssoToken(sim, 'admin')}` } }).then((r) => r.json() as Promise<{ tag: Array<{ id: string; name: string }> }>);
    const weekly = tags.tag.find((t) => t.name === 'weekly')!;
    expect((await fetch(`${sim.baseUrl}/api/tags/${weekly.id}`, { method: 'DELETE', headers: { Accept: 'application/json', Authorization: `Bearer ${await ssoToken(sim, 'admin')}` } })).status).toBe(200);
    const before = (await api.admin.get('/api/v1/jobs?limit=500')).body.jobs.length;
    const run = await api.admin.post(`/api/v1/policies/${tag.body.policy.id}/run`);
    const done = await policyRunDone(api.admin, tag.body.policy.id, run.body.run.id);
    expect(done).toMatchObject({ state: 'failed', vms: [] });
    expect((await api.admin.get('/api/v1/jobs?limit=500')).body.jobs.length).toBe(before);
  });

  test('what concerns every VM is for backup admins: the audit log (with the refusals above in it), deleted VMs, others\' jobs; metrics need the scrape token or an admin', async () => {
    await refused(() => api.viewer.get('/api/v1/audit'), /backup admin/);
    await refused(() => api.viewer.get('/api/v1/deleted-vms'), /backup admin/);
    const audit = await api.backupadmin.get('/api/v1/audit?action=access-denied&limit=1000');
    expect(audit.status).toBe(200);
    const actors = new Set(S.AuditList.parse(audit.body).entries.map((e) => e.actor.split('@')[0]));
    for (const who of ['viewer', 'diskop', 'operator', 'creator', 'user1']) expect(actors).toContain(who);
    expect((await api.admin.get('/api/v1/deleted-vms')).status).toBe(200);
    expect((await apiClient(svc.url).get('/metrics')).status).toBe(401);
    expect((await api.viewer.get('/metrics')).status).toBe(403);
    expect((await api.admin.get('/metrics')).status).toBe(200);
    // anyone may ask whether the service is up, and learns nothing more
    expect(S.HealthStatus.parse((await apiClient(svc.url).get('/api/v1/health')).body)).toEqual({ status: 'ok' });
    expect(S.Health.parse((await api.viewer.get('/api/v1/health')).body).version).toBeTruthy();
  });

  test('a WebSocket asks again what its user may see at each heartbeat: events of a VM the user lost stop', async () => {
    const ws = await EventsClient.open(svc.url, await ssoToken(sim, 'plain'));
    try {
      const first = await api.admin.post(`/api/v1/vms/${web.id}/backups`);
      await ws.waitFor((m) => m.type === 'job' && m.job.id === first.body.job.id && m.job.state === 'succeeded', 240_000);
      // user1 loses UserRole on web01. A heartbeat may still read the VM list the service cached
      // (5 s) from before; the next one reads it anew. After the third ping the second beat's
      // refresh is done: the socket knows.
      expect(sim.revoke(USER1_ON_WEB())).toBe(1);
      try {
        await pings(ws, 3, 30_000);
        const second = await api.admin.post(`/api/v1/vms/${web.id}/backups`);
        await jobDone(api.admin, second.body.job.id);
        // a repository verify goes to every socket, through the same ordered queue as web01's
        // events: once its event is here, any event of the second backup would be here too
        const verify = await api.admin.post('/api/v1/repository/verify');
        expect(verify.status).toBe(202);
        await ws.waitFor((m) => m.type === 'job' && m.job.id === verify.body.job.id, 60_000);
        expect(ws.messages.filter((m) => (m.type === 'job' && m.job.id === second.body.job.id) || (m.type === 'progress' && m.jobId === second.body.job.id))).toEqual([]);
        await jobDone(api.admin, verify.body.job.id);
      } finally {
        sim.grant(USER1_ON_WEB());
      }
    } finally {
      ws.close();
    }
  });

  test('a permission lookup the engine fails denies (fail closed), it never allows', async () => {
    // a session of its own: the service has no answer cached for its token, it must ask the engine
    const operator = apiClient(svc.url, await ssoToken(sim, 'operator'));
    sim.failNext({ method: 'GET', pathPrefix: `/ovirt-engine/api/vms/${web.id}/permissions`, status: 500, times: 5 });
    const before = await state();
    const r = await operator.post(`/api/v1/vms/${web.id}/backups`);
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.body.error.code).toMatch(/^ENGINE_/);
    expect(await state()).toBe(before);
  });
});

/** Resolves at the n-th heartbeat ping the service sends this socket from now (the ws client
 *  answers each with a pong by itself). */
function pings(ws: EventsClient, n: number, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let seen = 0;
    const onPing = (): void => {
      if (++seen < n) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${seen} of ${n} heartbeat pings in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      ws.ws.off('ping', onPing);
    };
    ws.ws.on('ping', onPing);
  });
}
