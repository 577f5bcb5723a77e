import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServiceAuditLog, type WrittenLine } from '../../backend/src/catalog';
import type { AuditEntry } from '../../backend/src/api/contract';
import { AuditImporter, auditOriginKey, Catalog } from '../../backend/src/catalog';

describe("the service's audit log", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-svc-audit-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('refused tokens: by a hash prefix only, once a minute per token; user actions always; each line handed on where it was written', async () => {
    const file = path.join(dir, 'audit.log');
    const written: Array<[AuditEntry, WrittenLine]> = [];
    const log = new ServiceAuditLog(file, undefined, (e, at) => written.push([e, at]));
    const token = 'secret-token-value';
    const key = createHash('sha256').update(token).digest('hex');
    const refusal = { tokenKey: key, code: 'AUTH_INVALID', message: 'refused', method: 'GET', path: '/api/v1/vms', remote: '127.0.0.1' };
    log.authFailure(refusal);
    log.authFailure(refusal); // the same token again within the minute: not recorded again
    log.record('policy-create', { actor: 'admin@internal', details: { policyId: 'p', name: 'nightly', vmIds: [] } });
    log.authFailure({ ...refusal, tokenKey: createHash('sha256').update('other').digest('hex') });
    await log.flushed();
    expect(written.map(([e]) => [e.kind, e.actor])).toEqual([
      ['auth-failure', `token:${key.slice(0, 16)}`],
      ['policy-create', 'admin@internal'],
      ['auth-failure', expect.stringMatching(/^token:[0-9a-f]{16}$/)],
    ]);
    const text = await fs.readFile(file, 'utf8');
    expect(text).not.toContain(token);
    expect(text).not.toContain(key); // only its prefix
    // each offset and text is the line as it is in the file
    for (const [e, at] of written) expect(text.slice(at.offset, at.offset + at.line.length + 1)).toBe(`${JSON.stringify(e)}\n`);

    // a line cut short by a crash: the next record starts on a line of its own, at the offset it says
    await fs.appendFile(file, '{"time":"2030-01-01T00:00:00.000Z","kind":"resto');
    log.record('restore', { actor: 'admin@internal', pointId: 'pt', vmKey: 'vm' });
    await log.flushed();
    const [last, at] = written[written.length - 1]!;
    expect((await fs.readFile(file, 'utf8')).slice(at.offset)).toBe(`${JSON.stringify(last)}\n`);

    // the catalog's import of the file finds the same records under the same keys: what the
    // service handed on is not added again; what it did not hand on (a crash) is
    const catalog = Catalog.open(path.join(dir, 'catalog.db'));
    try {
      catalog.audit.add(written.slice(0, 2).map(([e, w]) => ({ ...e, originKey: auditOriginKey(w.offset, w.line) })));
      expect(await new AuditImporter(catalog.audit, 'service', file).run()).toBe(2);
      expect(catalog.audit.list({ limit: 10 }).entries.map((e) => e.kind).sort()).toEqual(['auth-failure', 'auth-failure', 'policy-create', 'restore']);
    } finally {
      catalog.close();
    }
  });

  test('a flood of made-up tokens is recorded 100 a minute, the rest counted in one record; refused actions are never crowded out', async () => {
    const file = path.join(dir, 'flood.log');
    const written: AuditEntry[] = [];
    const log = new ServiceAuditLog(file, undefined, (e) => written.push(e));
    for (let i = 0; i < 1000; i++) {
      log.authFailure({ tokenKey: createHash('sha256').update(`bogus-${i}`).digest('hex'), code: 'AUTH_INVALID', message: 'refused', method: 'GET', path: '/api/v1/vms', remote: null });
    }
    log.accessDenied({ actor: 'viewer@internal', reason: 'viewer@internal may not back up vm web01', method: 'POST', path: '/api/v1/vms/x/backups' });
    await log.flushed();
    const failures = written.filter((e) => e.kind === 'auth-failure');
    // within one minute (a flood straddling the minute's end gives one more batch)
    expect(failures.length).toBeGreaterThanOrEqual(100);
    expect(failures.length).toBeLessThanOrEqual(201);
    expect(written.filter((e) => e.kind === 'access-denied').map((e) => [e.actor, e.details])).toEqual([['viewer@internal', { method: 'POST', path: '/api/v1/vms/x/backups' }]]);
    // one user's refusals: 30 a minute, the next record says how many were not recorded
    for (let i = 0; i < 50; i++) log.accessDenied({ actor: 'mallory@internal', reason: 'no', method: 'GET', path: '/api/v1/audit' });
    await log.flushed();
    expect(written.filter((e) => e.actor === 'mallory@internal').length).toBeLessThanOrEqual(60);
    expect(written.filter((e) => e.actor === 'mallory@internal').length).toBeGreaterThanOrEqual(30);
  });

  test('a failure to hand a written record on is logged, not thrown; the record stays in the file', async () => {
    const file = path.join(dir, 'audit2.log');
    const warnings: string[] = [];
    const log = new ServiceAuditLog(file, (m) => warnings.push(m), () => {
      throw new Error('database is locked');
    });
    log.record('policy-delete', { actor: 'admin@internal' });
    await log.flushed();
    expect(warnings).toEqual([expect.stringContaining('not in the catalog yet')]);
    expect(await fs.readFile(file, 'utf8')).toContain('"policy-delete"');
  });
});
