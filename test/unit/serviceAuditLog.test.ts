import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServiceAuditLog } from '../../backend/src/api/auditLog';

describe("the service's audit log", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-svc-audit-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('refused tokens: by a hash prefix only, once a minute per token; user actions always; JSON lines read back oldest first', async () => {
    const file = path.join(dir, 'audit.log');
    const log = new ServiceAuditLog(file);
    const token = 'secret-token-value';
    const key = createHash('sha256').update(token).digest('hex');
    const refusal = { tokenKey: key, code: 'AUTH_INVALID', message: 'refused', method: 'GET', path: '/api/v1/vms', remote: '127.0.0.1' };
    log.authFailure(refusal);
    log.authFailure(refusal); // the same token again within the minute: not recorded again
    log.record('policy-create', { actor: 'admin@internal', details: { policyId: 'p', name: 'nightly', vmIds: [] } });
    log.authFailure({ ...refusal, tokenKey: createHash('sha256').update('other').digest('hex') });
    const entries = await log.read();
    expect(entries.map((e) => [e.kind, e.actor])).toEqual([
      ['auth-failure', `token:${key.slice(0, 16)}`],
      ['policy-create', 'admin@internal'],
      ['auth-failure', expect.stringMatching(/^token:[0-9a-f]{16}$/)],
    ]);
    const text = await fs.readFile(file, 'utf8');
    expect(text).not.toContain(token);
    expect(text).not.toContain(key); // only its prefix
    expect(text.trim().split('\n').map((l) => JSON.parse(l) as { kind: string }).map((e) => e.kind)).toEqual(['auth-failure', 'policy-create', 'auth-failure']);
    // since, and a line cut short by a crash is skipped
    await fs.appendFile(file, '{"time":"2030-01-01T00:00:00.000Z","kind":"resto');
    expect(await log.read({ since: new Date(Date.now() + 60_000) })).toEqual([]);
    // the next record starts on a line of its own
    log.record('restore', { actor: 'admin@internal', pointId: 'pt', vmKey: 'vm' });
    expect((await log.read()).map((e) => e.kind)).toEqual(['auth-failure', 'policy-create', 'auth-failure', 'restore']);
    expect(await new ServiceAuditLog(path.join(dir, 'none.log')).read()).toEqual([]);
  });
});
