import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { AuditEntry } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Repository } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { writePoint } from './retentionFixture';
import { runCli, type CliRun } from '../helpers/cli';

const VM_KEY = 'f3c1a0de-5b6e-4c2a-9d1f-0a1b2c3d4e5f';

type Api = ReturnType<typeof apiClient>;

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

/**
 * The audit log through the service (issue: "an audit log (append-only file + catalog table) of
 * every deletion, unlock, policy change, restore and login failure, viewable by admins"): only
 * backup admins read it; the repository's file (written by the CLI while the service runs)
 * and the service's own are copied into the catalog incrementally, never twice, also across
 * restarts; filters and pages. No VM runs: points are written through the repository API.
 */
describe('the audit log through the service (engine simulator, a real service process, the real CLI)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let user: Api;
  let pointId: string;

  const svcDir = (): string => path.join(dir, 'svc');
  const repoDir = (): string => path.join(svcDir(), 'repository');

  async function all(api: Api = admin, query = ''): Promise<AuditEntry[]> {
    const r = await api.get(`/api/v1/audit?limit=1000${query}`);
    expect([query, r.status]).toEqual([query, 200]);
    return S.AuditList.parse(r.body).entries;
  }

  async function restart(): Promise<void> {
    expect(await svc.stop()).toBe(0);
    svc = await startServiceProcess({ sim, dataDir: svcDir() });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    user = apiClient(svc.url, await ssoToken(sim, 'plain'));
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-audit-api-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true, seed: false });
    svc = await startServiceProcess({ sim, dataDir: svcDir() });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    user = apiClient(svc.url, await ssoToken(sim, 'plain'));
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('only a backup admin reads it: a plain portal user gets 403 saying so, whatever the query (and each refusal is audited)', async () => {
    for (const q of ['', '?limit=0', '?bogus=1']) {
      const r = await user.get(`/api/v1/audit${q}`);
      expect([q, r.status]).toEqual([q, 403]);
      expect(r.body).toEqual({ error: { code: 'FORBIDDEN', message: expect.stringMatching(/^only a backup admin .* may read the audit log/), details: { required: 'backup admin' } } });
    }
    expect((await apiClient(svc.url).get('/api/v1/audit')).status).toBe(401);
    const r = await admin.get('/api/v1/audit');
    expect(r.status).toBe(200);
    const entries = S.AuditList.parse(r.body).entries;
    expect(entries.map((e) => [e.kind, e.source, e.details?.['path']])).toEqual([0, 1, 2].map(() => ['access-denied', 'service', '/api/v1/audit']));
    expect(entries.every((e) => e.actor.startsWith('user1@internal'))).toBe(true);
  });

  test("the service's records (a refused login, a policy change) and the CLI's unlock, written while the service runs, all show", async () => {
    const bad = `bogus-${randomBytes(12).toString('hex')}`;
    expect((await apiClient(svc.url, bad).get('/api/v1/vms')).status).toBe(401);
    const created = await admin.post('/api/v1/policies', {
      name: 'audited',
      schedule: '0 3 1 1 *',
      timeZone: 'UTC',
      selection: { search: 'name=nothing-matches-this*' },
      retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
    });
    expect(created.status).toBe(201);

    // a locked point, and the operator's support intervention from the server's shell
    const repo = await Repository.open(repoDir());
    try {
      pointId = (await writePoint(repo, { key: VM_KEY, name: 'audited-vm' }, [{ device: 'vda', image: randomBytes(1 << 20) }], { lockedUntil: '2099-01-01T00:00:00.000Z' })).pointId;
    } finally {
      await repo.close();
    }
    const un = await cli('points', 'unlock', '--repo', repoDir(), '--point', pointId, '--reason', 'ticket 99', '--operator', 'support-bob');
    expect([un.code, un.stderr]).toEqual([0, expect.stringContaining('support intervention')]);

    // (the refusals of the test before are in the log too, as access-denied)
    const entries = (await all()).filter((e) => e.kind !== 'access-denied');
    expect(entries.map((e) => [e.source, e.kind, e.actor])).toEqual([
      ['repository', 'unlock', 'cli:support-bob'],
      ['service', 'policy-create', expect.stringContaining('admin')],
      ['service', 'auth-failure', expect.stringMatching(/^token:[0-9a-f]{16}$/)],
    ]);
    expect(entries[0]).toMatchObject({ pointId, vmKey: VM_KEY, reason: 'ticket 99', details: { from: '2099-01-01T00:00:00.000Z' } });
    expect(entries[1]?.details).toMatchObject({ name: 'audited', vmIds: [] });
    expect(JSON.stringify(entries)).not.toContain(bad);
  });

  test('filters (action, vmId, since, until) and pages that cover everything once; bad queries are 400', async () => {
    // more history to page through: deletions by the CLI
    const repo = await Repository.open(repoDir());
    try {
      for (let i = 0; i < 4; i++) {
        const m = await writePoint(repo, { key: VM_KEY, name: 'audited-vm' }, [{ device: 'vda', image: randomBytes(1 << 20) }]);
        await repo.deletePoint(m.pointId, { reason: `tidy ${i}`, actor: 'cli:support-bob' });
      }
    } finally {
      await repo.close();
    }
    const entries = await all();
    expect(entries.filter((e) => e.kind === 'delete')).toHaveLength(4);

    expect((await all(admin, '&action=unlock,policy-create')).map((e) => e.kind)).toEqual(['unlock', 'policy-create']);
    expect((await all(admin, `&vmId=${VM_KEY.toUpperCase()}`)).map((e) => e.kind)).toEqual(['delete', 'delete', 'delete', 'delete', 'unlock']);
    const unlock = entries.find((e) => e.kind === 'unlock')!;
    expect((await all(admin, `&until=${encodeURIComponent(unlock.time)}`)).every((e) => e.time < unlock.time)).toBe(true);
    expect((await all(admin, `&since=${encodeURIComponent(unlock.time)}`)).map((e) => e.kind)).toEqual(['delete', 'delete', 'delete', 'delete', 'unlock']);

    const paged: AuditEntry[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const r = await admin.get(`/api/v1/audit?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      const page = S.AuditList.parse(r.body);
      paged.push(...page.entries);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(paged).toEqual(entries);

    for (const q of ['since=yesterday', 'until=soon', 'limit=0', 'limit=1001', 'action=bogus', 'actor=x', 'cursor=not-a-cursor']) {
      const r = await admin.get(`/api/v1/audit?${q}`);
      expect([q, r.status, r.body?.error?.code]).toEqual([q, 400, expect.stringMatching(/^(BAD_REQUEST|INVALID_ARGUMENT)$/)]);
    }
  });

  test('a restart copies nothing twice; a service record the catalog missed is filled in; a half-written line waits for its end', async () => {
    const before = await all();
    await restart();
    expect(await all()).toEqual(before);

    // as if the service died between writing its file and the catalog: the line is only in the file
    await svc.stop();
    const missed: AuditEntry = { time: new Date().toISOString(), kind: 'restore', source: 'service', actor: 'admin@internal-authz', pointId, vmKey: VM_KEY, reason: null, details: { jobId: 'j' } };
    await fs.appendFile(path.join(svcDir(), 'audit.log'), `${JSON.stringify(missed)}\n`);
    svc = await startServiceProcess({ sim, dataDir: svcDir() });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    const after = await all();
    expect(after).toEqual([missed, ...before]);

    // the CLI (or anything) half-way through writing a record: not shown until it is whole
    const line = `${JSON.stringify({ time: new Date().toISOString(), actor: 'cli:support-bob', action: 'gc', pointId: null, vmKey: null, reason: null, details: { chunksRemoved: 0 }, pid: 1, host: 'h' })}\n`;
    const file = path.join(repoDir(), 'audit.log');
    await fs.appendFile(file, line.slice(0, 30));
    expect(await all()).toEqual(after);
    await fs.appendFile(file, line.slice(30));
    expect((await all()).map((e) => e.kind)).toEqual(['gc', ...after.map((e) => e.kind)]);
  });
});
