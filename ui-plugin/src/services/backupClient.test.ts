// Unit tests of the REST client against a real local HTTP server: token, errors, paging, routes.
import * as http from 'http';
import type { AddressInfo } from 'net';
import { createBackupClient } from './backupClient';
import { ServiceError } from './serviceError';

// The REST client against a real loopback HTTP server (no fetch mock).
describe('backup client', () => {
  let server: http.Server;
  let url: string;
  const seen: Array<{ method: string; url: string; auth: string | undefined; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
        const send = (status: number, json: unknown): void => {
          res.writeHead(status, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        if (req.headers.authorization !== 'Bearer good') return send(401, { error: { code: 'AUTH_TOKEN_REFUSED', message: 'the engine does not know this token' } });
        if (req.url === '/api/v1/vms') return send(200, { vms: [] });
        if (req.url?.startsWith('/api/v1/jobs?')) return send(200, { jobs: [], nextBefore: null });
        if (req.url === '/api/v1/vms/a%2Fb/backups') return send(202, { job: { id: 'j1' }, joined: false });
        if (req.url === '/api/v1/vms/gone/backups') return send(404, { error: { code: 'VM_NOT_FOUND', message: 'no vm gone' } });
        if (req.url === '/api/v1/points/p1/restore/plan') return send(200, { ok: true, echo: JSON.parse(body) as unknown });
        if (req.url === '/api/v1/points/p1/restore') {
          const problems = [{ severity: 'error', code: 'VM_NAME_EXISTS', message: 'a vm named db01 already exists', subject: 'db01' }];
          return send(409, { error: { code: 'RESTORE_REFUSED', message: 'the restore cannot go ahead', details: { problems } } });
        }
        if (req.url === '/api/v1/points/p1/disks/ua-1/download') return send(201, { url: '/api/v1/downloads/abc', expiresAt: '2024-01-01T00:00:00Z', sizeBytes: 1, format: 'qcow2', fileName: 'x.qcow2' });
        if (req.url === '/api/v1/policies/p%201' && req.method === 'DELETE') {
          res.writeHead(204);
          return res.end();
        }
        if (req.url === '/api/v1/policies/p%201' && req.method === 'PUT') return send(200, { policy: { id: 'p 1' }, warnings: [] });
        if (req.url === '/api/v1/policies' && req.method === 'POST') return send(400, { error: { code: 'BAD_REQUEST', message: 'request body.schedule: bad cron' } });
        if (req.url === '/api/v1/policy-runs?limit=5') return send(200, { runs: [] });
        if (req.url?.startsWith('/api/v1/audit')) return send(403, { error: { code: 'FORBIDDEN', message: 'only an engine SuperUser may read the audit log: user1 holds no SuperUser role on the system' } });
        if (req.url === '/api/v1/repository') {
          res.writeHead(502);
          return res.end('<html>bad gateway</html>');
        }
        return send(500, { error: { code: 'INTERNAL', message: 'boom' } });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the portal token as Bearer on every call and reads the answer', async () => {
    let token = 'good';
    const c = createBackupClient({ serviceUrl: url, token: () => token });
    await expect(c.vmList()).resolves.toEqual({ vms: [] });
    await expect(c.jobList({ vmId: 'v 1', limit: 5, state: 'running' })).resolves.toEqual({ jobs: [], nextBefore: null });
    expect(seen.at(-1)?.url).toBe('/api/v1/jobs?vmId=v+1&state=running&limit=5');
    await c.vmBackupStart('a/b');
    expect(seen.at(-1)).toMatchObject({ method: 'POST', auth: 'Bearer good', body: '{}' });
    token = 'renewed';
    await c.vmList().catch(() => undefined);
    expect(seen.at(-1)?.auth).toBe('Bearer renewed');
  });

  it('classifies refusals with the service message', async () => {
    const bad = createBackupClient({ serviceUrl: url, token: () => 'bad' });
    await expect(bad.vmList()).rejects.toMatchObject({ kind: 'unauthorized', status: 401, code: 'AUTH_TOKEN_REFUSED', message: 'the engine does not know this token' });
    const c = createBackupClient({ serviceUrl: url, token: () => 'good' });
    await expect(c.vmBackupStart('gone')).rejects.toMatchObject({ kind: 'not-found', code: 'VM_NOT_FOUND' });
    await expect(c.repositoryGet()).rejects.toMatchObject({ kind: 'server', status: 502, message: 'HTTP 502' });
    await expect(c.pointGet('x')).rejects.toBeInstanceOf(ServiceError);
  });

  it('asks for an audit page with its filters; a caller who is not SuperUser gets a forbidden error', async () => {
    const c = createBackupClient({ serviceUrl: url, token: () => 'good' });
    const refused = await c.auditList({ limit: 50, cursor: '2030-01-01T00:00:00.000Z|7', action: 'unlock,delete', vmId: 'v1' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ kind: 'forbidden', status: 403, code: 'FORBIDDEN', message: expect.stringContaining('SuperUser') });
    expect(seen.at(-1)?.url).toBe('/api/v1/audit?limit=50&cursor=2030-01-01T00%3A00%3A00.000Z%7C7&action=unlock%2Cdelete&vmId=v1');
    await c.auditList().catch(() => undefined);
    expect(seen.at(-1)?.url).toBe('/api/v1/audit');
  });

  it('plans and starts restores, keeps a refusal\'s problems, and gets download links', async () => {
    const c = createBackupClient({ serviceUrl: url, token: () => 'good' });
    await expect(c.restorePlan('p1', { mode: 'vm', vmName: 'web01-copy' })).resolves.toEqual({ ok: true, echo: { mode: 'vm', vmName: 'web01-copy' } });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/api/v1/points/p1/restore/plan' });
    const refused = await c.restoreStart('p1', { mode: 'vm', vmName: 'db01' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ kind: 'conflict', status: 409, code: 'RESTORE_REFUSED', details: { problems: [{ code: 'VM_NAME_EXISTS', subject: 'db01' }] } });
    const ticket = await c.diskDownloadTicket('p1', 'ua-1', 'qcow2');
    expect(seen.at(-1)).toMatchObject({ method: 'POST', body: '{"format":"qcow2"}' });
    expect(c.downloadUrl(ticket)).toBe(`${url}/api/v1/downloads/abc`);
  });

  it('manages policies: PUT and DELETE (204, no body), a refusal naming the field', async () => {
    const c = createBackupClient({ serviceUrl: url, token: () => 'good' });
    const body = { name: 'n', schedule: 'x', timeZone: 'UTC', selection: { tag: 'daily' }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, lockDays: 0, concurrency: 1, window: null, enabled: true };
    await expect(c.policyUpdate('p 1', body)).resolves.toEqual({ policy: { id: 'p 1' }, warnings: [] });
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', body: JSON.stringify(body) });
    await expect(c.policyDelete('p 1')).resolves.toBeUndefined();
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE' });
    await expect(c.policyCreate(body)).rejects.toMatchObject({ kind: 'bad-request', status: 400, message: 'request body.schedule: bad cron' });
    await expect(c.policyRunList(5)).resolves.toEqual({ runs: [] });
  });

  it('says the service is unreachable when nothing answers', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = createBackupClient({ serviceUrl: `http://127.0.0.1:${port}`, token: () => 'good' });
    await expect(c.vmList()).rejects.toMatchObject({ kind: 'unreachable', status: null });
  });
});
