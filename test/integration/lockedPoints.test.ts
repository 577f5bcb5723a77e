import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job, PolicyRun } from '../../backend/src/api/contract';
import { OPERATIONS } from '../../backend/src/api/openapi';
import * as S from '../../backend/src/api/schemas';
import { newPointId, Repository, type VmIdentity } from '../../backend/src/repository';
import { EngineSim, type SimVm } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { apiClient, EventsClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { runCli, type CliRun } from '../helpers/cli';
import { eventually, jobDone as jobDoneOf, policyRunDone, withRepository } from '../helpers/serviceWaits';
import { CS, expectCode, scratchRepositories, writePoint } from './retentionFixture';

const MiB = 1 << 20;
const DAY_MS = 86_400_000;

type Api = ReturnType<typeof apiClient>;

const cli = (...args: string[]): Promise<CliRun> => runCli(args);


function policyBody(over: Record<string, unknown>): Record<string, unknown> {
  return {
    name: `p-${randomBytes(3).toString('hex')}`,
    // 03:00 on January 1st: never fires during a test by itself
    schedule: '0 3 1 1 *',
    timeZone: 'UTC',
    retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    lockDays: 0,
    concurrency: 1,
    window: null,
    enabled: true,
    ...over,
  };
}

/**
 * Issue 8: "a locked point: every API route that could remove or change it refuses (enumerate
 * the routes in the test so a new route cannot slip by), prune skips it, GC keeps its chunks;
 * CLI unlock works and is audited". The point is made by a real backup through the service and
 * locked by a policy's lockDays; then every route of OPERATIONS that is not a GET is called with
 * it (or its VM) — a route added later without an entry here fails the test.
 */
describe('a retention-locked restore point (engine simulator, real QEMU, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let user: Api;
  let web: SimVm;
  let lockingPolicy: string;
  let locked: string;
  let lockedUntil: string;
  const atBackup = new Map<string, Buffer>();

  const repoDir = (): string => path.join(dir, 'svc', 'repository');
  const withRepo = <T>(fn: (r: Repository) => Promise<T>): Promise<T> => withRepository(repoDir(), fn);

  const jobDone = (jobId: string): Promise<Job> => jobDoneOf(admin, jobId);
  const runDone = (policyId: string, runId: string): Promise<PolicyRun> => policyRunDone(admin, policyId, runId);

  /** The point is there, through the API and in its manifest, with the same lock. */
  async function stillLocked(after: string): Promise<void> {
    const r = await admin.get(`/api/v1/points/${locked}`);
    expect([after, r.status]).toEqual([after, 200]);
    expect([after, S.PointDetail.parse(r.body).lockedUntil]).toEqual([after, lockedUntil]);
    const m = await withRepo((repo) => repo.readManifest(locked));
    expect([after, m.lockedUntil]).toEqual([after, lockedUntil]);
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-locked-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    // format 2: this suite runs gc on the service's repository (packs collected, FORMAT.md §20)
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), config: 'repository: { format: 2 }\nbootCheck: { timeoutSeconds: 60 }\n' });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    user = apiClient(svc.url, await ssoToken(sim, 'plain'));
    web = sim.vmByName('web01');
    for (const d of web.disks) atBackup.set(d.deviceId, await sim.diskBytes(web.id, d.id));

    // the point: a policy run's backup, locked for 30 days by the policy
    const created = await admin.post('/api/v1/policies', policyBody({ name: 'locking', selection: { vmIds: [web.id] }, lockDays: 30 }));
    expect(created.status).toBe(201);
    lockingPolicy = S.PolicySaveResponse.parse(created.body).policy.id;
    const run = S.PolicyRunResponse.parse((await admin.post(`/api/v1/policies/${lockingPolicy}/run`)).body).run;
    const done = await runDone(lockingPolicy, run.id);
    expect(done.state).toBe('succeeded');
    const job = await jobDone(done.vms[0]!.jobId!);
    locked = job.result!.pointId;
    // the point was committed with the policy's lock: it is in the manifest it was written with
    // (no lock set afterwards: there is no lock-extend record, and the lock counts from the commit)
    const point = S.PointDetail.parse((await admin.get(`/api/v1/points/${locked}`)).body);
    lockedUntil = point.lockedUntil!;
    expect(lockedUntil).not.toBeNull();
    expect(Date.parse(lockedUntil) - Date.now()).toBeGreaterThan(29 * DAY_MS);
    const manifest = await withRepo((r) => r.readManifest(locked));
    expect(manifest.lockedUntil).toBe(lockedUntil);
    expect(Math.abs(Date.parse(lockedUntil) - Date.parse(manifest.completedAt) - 30 * DAY_MS)).toBeLessThan(60_000);
    expect((await withRepo((r) => r.auditLog())).filter((a) => a.action === 'lock-extend')).toEqual([]);
    // the source changes afterwards: the locked point must keep what it had
    await sim.guestWrite(web.id, web.disks[0]!.id, 2 * MiB, randomBytes(2 * MiB));
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('every route that is not a GET, called with the locked point or its VM, leaves the point and its lock as they were', async () => {
    const device = web.disks[0]!.deviceId;
    let otherPolicy = '';
    let lastJob = '';
    // in this order: a policy is created before it is changed, run and deleted
    const calls: Array<[string, () => Promise<void>]> = [
      [
        'post /api/v1/vms/{vmId}/backups',
        async () => {
          const r = await admin.post(`/api/v1/vms/${web.id}/backups`, { full: true });
          expect(r.status).toBe(202);
          lastJob = S.StartBackupResponse.parse(r.body).job.id;
          expect((await jobDone(lastJob)).state).toBe('succeeded');
        },
      ],
      [
        'post /api/v1/jobs/{jobId}/cancel',
        async () => {
          const r = await admin.post(`/api/v1/jobs/${lastJob}/cancel`);
          expect([r.status, r.body.error?.code]).toEqual([409, 'JOB_NOT_CANCELLABLE']);
        },
      ],
      [
        'post /api/v1/points/{pointId}/restore/plan',
        async () => {
          const r = await admin.post(`/api/v1/points/${locked}/restore/plan`, { mode: 'vm' });
          expect(r.status).toBe(200);
        },
      ],
      [
        'post /api/v1/points/{pointId}/restore',
        async () => {
          const body = { mode: 'disks', disks: web.disks.map((d) => ({ device: d.deviceId, include: d.deviceId === device, ...(d.deviceId === device ? { name: 'locked-point-disk' } : {}) })) };
          const r = await admin.post(`/api/v1/points/${locked}/restore`, body);
          expect(r.status).toBe(202);
          expect((await jobDone(S.StartRestoreResponse.parse(r.body).job.id)).state).toBe('succeeded');
        },
      ],
      [
        'post /api/v1/points/{pointId}/disks/{device}/download',
        async () => {
          const r = await admin.post(`/api/v1/points/${locked}/disks/${device}/download`, { format: 'raw' });
          expect(r.status).toBe(201);
        },
      ],
      [
        'post /api/v1/policies',
        async () => {
          const r = await admin.post('/api/v1/policies', policyBody({ name: 'prune-hard', selection: { vmIds: [web.id] } }));
          expect(r.status).toBe(201);
          otherPolicy = S.PolicySaveResponse.parse(r.body).policy.id;
        },
      ],
      [
        'put /api/v1/policies/{policyId}',
        async () => {
          // keep only the newest point: the locked one is older than the backups made above
          const r = await admin.raw('PUT', `/api/v1/policies/${otherPolicy}`, policyBody({ name: 'prune-hard', selection: { vmIds: [web.id] }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 } }));
          expect(r.status).toBe(200);
          // and the locking policy without its lock: changing a policy does not touch points it locked
          const unlocking = await admin.raw('PUT', `/api/v1/policies/${lockingPolicy}`, policyBody({ name: 'locking', selection: { vmIds: [web.id] }, lockDays: 0, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 } }));
          expect(unlocking.status).toBe(200);
        },
      ],
      [
        'post /api/v1/policies/retention-preview',
        async () => {
          // what "keep the newest point" would do now: the newest kept by "last", the locked
          // one left by its lock (with its date), nothing removed here but shown as such
          const preview = async (retention: Record<string, number>, timeZone = 'Europe/Berlin'): Promise<{ status: number; body: any }> =>
            admin.post('/api/v1/policies/retention-preview', { selection: { vmIds: [web.id] }, retention: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, ...retention }, timeZone });
          const r = await preview({ keepLast: 1 });
          expect(r.status).toBe(200);
          const p = S.RetentionPreview.parse(r.body);
          const ids = (await withRepo((repo) => repo.listPoints({ vmKey: web.id }))).map((x) => x.pointId);
          expect(ids).toHaveLength(2);
          expect(p).toMatchObject({ keepsAll: false, timeZone: 'Europe/Berlin', totals: { keep: 1, remove: 0, locked: 1 } });
          expect(p.vms.map((v) => [v.vmId, v.vmName])).toEqual([[web.id, 'web01']]);
          expect(p.vms[0]!.points).toEqual([
            { pointId: ids[1], createdAt: expect.any(String), action: 'keep', keptBy: ['last'], lockedUntil: null },
            { pointId: locked, createdAt: expect.any(String), action: 'locked', keptBy: [], lockedUntil },
          ]);
          // rules all zero: a policy that never prunes
          const all = S.RetentionPreview.parse((await preview({})).body);
          expect(all).toMatchObject({ keepsAll: true, totals: { keep: 2, remove: 0, locked: 0 } });
          // bad inputs: an unknown zone, a tag the engine lacks, a negative count
          expect([(await preview({ keepLast: 1 }, 'Mars/Olympus')).body.error.message]).toEqual([expect.stringContaining('timeZone')]);
          const noTag = await admin.post('/api/v1/policies/retention-preview', { selection: { tag: 'no-such-tag' }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, timeZone: 'UTC' });
          expect([noTag.status, noTag.body.error.message]).toEqual([400, expect.stringContaining('no tag "no-such-tag"')]);
          expect((await preview({ keepLast: -1 })).status).toBe(400);
        },
      ],
      [
        'post /api/v1/policies/{policyId}/run',
        async () => {
          const r = await admin.post(`/api/v1/policies/${otherPolicy}/run`);
          expect(r.status).toBe(202);
          const run = await runDone(otherPolicy, S.PolicyRunResponse.parse(r.body).run.id);
          expect(run.state).toBe('succeeded');
          // the run's retention (just after the run) prunes web01 down to its newest point, except the locked one
          const newest = (await jobDone(run.vms[0]!.jobId!)).result!.pointId;
          await eventually(async () => {
            const ids = (await withRepo((repo) => repo.listPoints({ vmKey: web.id }))).map((p) => p.pointId);
            return ids.length === 2 ? ids : undefined;
          });
          expect((await withRepo((repo) => repo.listPoints({ vmKey: web.id }))).map((p) => p.pointId)).toEqual([locked, newest]);
          const pruned = (await withRepo((repo) => repo.auditLog())).filter((a) => a.action === 'prune' && a.actor === 'policy prune-hard');
          expect(pruned.length).toBeGreaterThan(0);
        },
      ],
      [
        'delete /api/v1/policies/{policyId}',
        async () => {
          expect((await admin.raw('DELETE', `/api/v1/policies/${otherPolicy}`)).status).toBe(204);
          expect((await admin.raw('DELETE', `/api/v1/policies/${lockingPolicy}`)).status).toBe(204);
        },
      ],
      [
        'post /api/v1/points/{pointId}/verify',
        async () => {
          const r = await admin.post(`/api/v1/points/${locked}/verify`);
          expect(r.status).toBe(202);
          const job = await jobDone(S.StartVerifyResponse.parse(r.body).job.id);
          expect(job).toMatchObject({ kind: 'verify', state: 'succeeded', vmId: web.id, result: { pointId: locked, verified: { points: 1, damaged: [], quarantined: 0, cleared: [] } } });
        },
      ],
      [
        'post /api/v1/points/{pointId}/bootcheck',
        async () => {
          // web01's disks hold no operating system: the boot check ends with a verdict, the point
          // is only read (its record is beside it, in bootchecks/)
          const r = await admin.post(`/api/v1/points/${locked}/bootcheck`);
          expect(r.status).toBe(202);
          const job = await jobDone(S.StartBootCheckResponse.parse(r.body).job.id);
          expect(job).toMatchObject({ kind: 'bootcheck', state: 'succeeded', vmId: web.id, result: { pointId: locked, bootCheck: { state: expect.stringMatching(/^(failed|timeout)$/) } } });
        },
      ],
      [
        'post /api/v1/points/{pointId}/files/session',
        async () => {
          // a file-browsing session only reads the point (under a lease that ends with it)
          const r = await admin.post(`/api/v1/points/${locked}/files/session`, {});
          expect(r.status).toBe(202);
          const s = await eventually(async () => {
            const v = S.FileSessionView.parse((await admin.get(`/api/v1/points/${locked}/files/session`)).body);
            return v.state === 'opening' ? undefined : v;
          }, 400_000);
          expect(s.state).toBe('ready');
        },
      ],
      [
        'delete /api/v1/points/{pointId}/files/session',
        async () => {
          expect((await admin.raw('DELETE', `/api/v1/points/${locked}/files/session`)).status).toBe(204);
        },
      ],
      [
        'post /api/v1/repository/verify',
        async () => {
          // a backup admin's (a plain user may not verify what concerns every vm)
          expect((await user.post('/api/v1/repository/verify')).status).toBe(403);
          const r = await admin.post('/api/v1/repository/verify');
          expect(r.status).toBe(202);
          const job = await jobDone(S.StartVerifyResponse.parse(r.body).job.id);
          expect(job).toMatchObject({ kind: 'verify', state: 'succeeded', result: { verified: { damaged: [] } } });
        },
      ],
    ];

    const described = OPERATIONS.filter((o) => o.method !== 'get').map((o) => `${o.method} ${o.path}`).sort();
    // a route that is not a GET and is not called here fails: add it above, with the locked point
    expect(calls.map(([k]) => k).sort()).toEqual(described);
    for (const [key, call] of calls) {
      await call();
      await stillLocked(key);
    }

    // what a route that could delete or unlock would look like does not exist
    for (const [method, p] of [
      ['DELETE', `/api/v1/points/${locked}`],
      ['POST', `/api/v1/points/${locked}/unlock`],
      ['PUT', `/api/v1/points/${locked}/lock`],
      ['POST', `/api/v1/points/${locked}/delete`],
      ['POST', '/api/v1/repository/prune'],
      ['POST', '/api/v1/repository/gc'],
    ] as const) {
      const r = await admin.raw(method, p, {});
      expect([method, p, r.status]).toEqual([method, p, 404]);
    }
    await stillLocked('unknown routes');
  });

  test('prune by rules that would remove it skips it; gc keeps its chunks: it restores byte-exact afterwards', async () => {
    // two more points with data of their own: the prune removes the first, gc frees its chunks
    for (let i = 0; i < 2; i++) {
      await sim.guestWrite(web.id, web.disks[0]!.id, 4 * MiB, randomBytes(MiB));
      const r = await admin.post(`/api/v1/vms/${web.id}/backups`);
      expect(r.status).toBe(202);
      expect((await jobDone(S.StartBackupResponse.parse(r.body).job.id)).state).toBe('succeeded');
    }
    const report = await withRepo((r) => r.prune({ keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 1 }, { tz: 'UTC', vmKey: web.id, actor: 'test', reason: 'locked point test' }));
    expect(report.locked).toEqual([locked]);
    expect(report.removed.length).toBeGreaterThanOrEqual(1);
    // gc keeps chunks younger than a second of clock slack, whatever the grace
    await new Promise((res) => setTimeout(res, 1_500));
    const gc = await withRepo((r) => r.gc({ graceMs: 0, actor: 'test' }));
    expect(gc.chunksRemoved).toBeGreaterThan(0);
    await stillLocked('prune + gc');
    for (const [device, expected] of atBackup) {
      const got = await withRepo((r) => restoredBytes(r, locked, device, path.join(dir, `restored-${device}.raw`)));
      expectSameBytes(got, expected, `disk ${device} of the locked point after prune and gc`);
    }
  });

  test('the operator CLI unlocks it (audited, shown by GET /audit); refused tokens are in the audit too, without the token', async () => {
    // the service refuses a token the engine does not know: recorded by its hash only
    const bad = `bogus-${randomBytes(12).toString('hex')}`;
    expect((await apiClient(svc.url, bad).get('/api/v1/vms')).status).toBe(401);
    const badWs = `bogus-ws-${randomBytes(12).toString('hex')}`;
    const ws = await EventsClient.open(svc.url, badWs);
    expect(await ws.waitClosed()).toBe(4401);

    const un = await cli('points', 'unlock', '--repo', repoDir(), '--point', locked, '--reason', 'ticket 4711: customer asked', '--operator', 'support-alice');
    expect([un.code, un.stderr]).toEqual([0, expect.stringContaining('support intervention')]);
    expect((await withRepo((r) => r.readManifest(locked))).lockedUntil).toBeNull();
    // the point's detail reads the lock from the manifest: the change from the shell shows at once
    expect(S.PointDetail.parse((await admin.get(`/api/v1/points/${locked}`)).body).lockedUntil).toBeNull();
    // the lists read the catalog, which follows the CLI's audit records (no restart needed)
    const listed = async (): Promise<Array<{ id: string; lockedUntil: string | null }>> => S.PointList.parse((await admin.get(`/api/v1/vms/${web.id}/points`)).body).points;
    await eventually(async () => ((await listed()).find((p) => p.id === locked)?.lockedUntil === null ? true : undefined), 30_000);
    const del = await cli('points', 'delete', '--repo', repoDir(), '--point', locked, '--reason', 'ticket 4711', '--operator', 'support-alice');
    expect(del.code).toBe(0);
    await expect(withRepo((r) => r.readManifest(locked))).rejects.toMatchObject({ code: 'REPO_POINT_NOT_FOUND' });
    await eventually(async () => ((await listed()).some((p) => p.id === locked) ? undefined : true), 30_000);
    expect((await admin.get(`/api/v1/points/${locked}`)).status).toBe(404);

    // only backup admins read the audit log
    expect((await user.get('/api/v1/audit?limit=100')).status).toBe(403);
    const r = await admin.get('/api/v1/audit?limit=100');
    expect(r.status).toBe(200);
    const entries = S.AuditList.parse(r.body).entries;
    const times = entries.map((e) => Date.parse(e.time));
    expect([...times].sort((a, b) => b - a)).toEqual(times); // newest first
    const mine = entries.filter((e) => e.pointId === locked).map((e) => [e.kind, e.actor]);
    expect(mine.slice(0, 2)).toEqual([
      ['delete', 'cli:support-alice'],
      ['unlock', 'cli:support-alice'],
    ]);
    expect(mine.map(([kind]) => kind)).not.toContain('lock-extend');
    expect(entries.find((e) => e.kind === 'unlock')).toMatchObject({ source: 'repository', reason: 'ticket 4711: customer asked', details: { from: lockedUntil } });
    const refused = entries.filter((e) => e.kind === 'auth-failure').reverse();
    expect(refused).toEqual([
      expect.objectContaining({ source: 'service', actor: expect.stringMatching(/^token:[0-9a-f]{16}$/), details: expect.objectContaining({ code: 'AUTH_INVALID', method: 'GET', path: '/api/v1/vms' }) }),
      expect.objectContaining({ source: 'service', actor: expect.stringMatching(/^token:[0-9a-f]{16}$/), details: expect.objectContaining({ code: 'AUTH_INVALID', method: 'WEBSOCKET', path: '/api/v1/events' }) }),
    ]);
    expect(JSON.stringify(entries)).not.toContain(bad);
    expect(JSON.stringify(entries)).not.toContain(badWs);
    // what users did through the service: restores, policy changes, runs by hand
    const service = entries.filter((e) => e.source === 'service' && e.kind !== 'auth-failure' && e.kind !== 'access-denied').map((e) => [e.kind, e.details?.['name'] ?? e.pointId]);
    // and what the plain user was refused (the repository verify, the audit log), by name
    expect(entries.filter((e) => e.kind === 'access-denied').map((e) => [e.actor.split('@')[0], e.details?.['path']]).reverse()).toEqual([
      ['user1', '/api/v1/repository/verify'],
      ['user1', '/api/v1/audit'],
    ]);
    expect(service.reverse()).toEqual([
      ['policy-create', 'locking'],
      ['policy-run', 'locking'],
      ['restore', locked],
      ['policy-create', 'prune-hard'],
      ['policy-update', 'prune-hard'],
      ['policy-update', 'locking'],
      ['policy-run', 'prune-hard'],
      ['policy-delete', 'prune-hard'],
      ['policy-delete', 'locking'],
      // the file-browsing session opened and closed on the locked point
      ['file-restore', locked],
      ['file-restore', locked],
    ]);
    expect(entries.filter((e) => e.kind === 'file-restore').map((e) => e.reason).reverse()).toEqual(['open', 'close']);
    expect(entries.find((e) => e.kind === 'policy-update' && e.details?.['name'] === 'locking')).toMatchObject({ actor: expect.stringContaining('admin'), details: { lockDays: 0, before: { lockDays: 30 } } });
    expect(await fs.readFile(path.join(dir, 'svc', 'audit.log'), 'utf8')).not.toContain(bad);

    // since and limit
    const since = S.AuditList.parse((await admin.get(`/api/v1/audit?since=${encodeURIComponent(entries[1]!.time)}`)).body).entries;
    expect(since.every((e) => Date.parse(e.time) >= Date.parse(entries[1]!.time))).toBe(true);
    expect(S.AuditList.parse((await admin.get('/api/v1/audit?limit=1')).body).entries).toHaveLength(1);
    expect((await admin.get('/api/v1/audit?since=yesterday')).status).toBe(400);
    expect((await admin.get('/api/v1/audit?limit=0')).status).toBe(400);
    expect((await admin.get('/api/v1/audit?actor=x')).status).toBe(400);
    expect((await apiClient(svc.url).get('/api/v1/audit')).status).toBe(401);
  });
});

/**
 * The repository itself: a point's retention lock is in the manifest it is committed with, so
 * there is no instant at which the point exists unlocked — no listing, prune or deletion, in
 * this process or another, ever sees it so.
 */
describe('a point committed with its retention lock (the repository, no service)', () => {
  const newRepo = scratchRepositories('olvm-lock-at-commit-');
  const vm: VmIdentity = { key: 'vm-l', name: 'locked-from-birth' };

  test('a deleter racing the commit finds it locked at its first listing; prune skips it; the CLI cannot delete it either', async () => {
    const repo = await newRepo();
    const unlocked = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(CS) }]);
    // deletes every point of the VM the moment a listing shows it, as fast as it can
    const outcome = new Map<string, string>();
    let stop = false;
    const deleter = (async () => {
      while (!stop) {
        for (const p of await repo.listPoints({ vmKey: vm.key })) {
          if (outcome.has(p.pointId)) continue;
          const r = await repo.deletePoint(p.pointId, { reason: 'racing', actor: 'test' }).then(
            () => 'deleted',
            (err: Error & { code?: string }) => err.code ?? err.message,
          );
          outcome.set(p.pointId, r);
        }
        await new Promise((res) => setImmediate(res));
      }
    })();
    const until = new Date(Date.now() + 7 * DAY_MS);
    let locked;
    try {
      locked = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(4 * CS) }], { lockedUntil: until, slowMs: 20 });
      const id = locked.pointId;
      await eventually(() => Promise.resolve(outcome.has(id) ? true : undefined), 10_000);
    } finally {
      stop = true;
      await deleter;
    }
    expect(outcome.get(unlocked.pointId)).toBe('deleted');
    expect(outcome.get(locked.pointId)).toBe('REPO_POINT_LOCKED');
    expect(locked.lockedUntil).toBe(until.toISOString());
    expect((await repo.readManifest(locked.pointId)).lockedUntil).toBe(until.toISOString());
    expect((await repo.listPoints({ vmKey: vm.key }))[0]).toMatchObject({ pointId: locked.pointId, lockedUntil: until.toISOString() });

    // prune by rules that would remove it (a newer point is the one kept): skipped, locked
    const newer = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(CS) }]);
    expect(await repo.prune({ keepLast: 1 }, { vmKey: vm.key, actor: 'test' })).toMatchObject({ removed: [], locked: [locked.pointId] });
    // nor from another process
    const del = await runCli(['points', 'delete', '--repo', repo.dir, '--point', locked.pointId, '--reason', 'now']);
    expect([del.code, del.stderr]).toEqual([1, expect.stringContaining(`is locked until ${until.toISOString()}`)]);
    const pruned = JSON.parse((await runCli(['prune', '--repo', repo.dir, '--keep-last', '1', '--json'])).stdout) as { locked: string[]; removed: string[] };
    expect(pruned).toMatchObject({ removed: [], locked: [locked.pointId] });
    expect((await repo.listPoints({ vmKey: vm.key })).map((p) => p.pointId)).toEqual([locked.pointId, newer.pointId]);
    // no lock change was ever needed: the audit log has none
    expect((await repo.auditLog()).filter((a) => a.action === 'lock-extend')).toEqual([]);
  });

  test('commit takes the lock as a Date or an ISO string; anything else fails the commit and no point appears', async () => {
    const repo = await newRepo();
    const at = new Date();
    const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: null });
    try {
      const dw = w.beginDisk({ device: 'vda', virtualSize: CS });
      await dw.putChunk(0, randomBytes(CS));
      await dw.finish();
      const commit = (lockedUntil: unknown): Promise<unknown> =>
        w.commit({
          disks: [{ device: 'vda', node: 'n', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'b', bitmapPersistent: false, bytesRead: CS }],
          consistency: 'crash',
          vmDefinition: null,
          lockedUntil: lockedUntil as Date,
        });
      await expectCode(commit('next tuesday'), 'INVALID_ARGUMENT');
      await expectCode(commit(new Date(Number.NaN)), 'INVALID_ARGUMENT');
      expect(await repo.listPoints()).toEqual([]);
      expect(await commit('2099-01-01')).toMatchObject({ lockedUntil: '2099-01-01T00:00:00.000Z' });
    } finally {
      await w.abort();
    }
    await expectCode(repo.deletePoint(w.pointId, { reason: 'r', actor: 'a' }), 'REPO_POINT_LOCKED');
  });
});
