import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import Database from 'better-sqlite3';
import type { AuditEntry } from '../../backend/src/api/contract';
import { AuditImporter, auditOriginKey, Catalog, type AuditRow } from '../../backend/src/catalog';
import { AppError } from '../../backend/src/errors';

let dir: string;
const open: Catalog[] = [];
let n = 0;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-audit-catalog-'));
});
afterAll(async () => {
  for (const c of open) c.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function newCatalog(): { catalog: Catalog; file: string } {
  const file = path.join(dir, `c${++n}`, 'catalog.db');
  const catalog = Catalog.open(file);
  open.push(catalog);
  return { catalog, file };
}

/** A line of the repository's audit.log as appendAudit writes it (FORMAT.md §12). */
function repoLine(time: string, action: string, over: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ time, actor: 'cli:alice@host', action, pointId: 'p1', vmKey: 'vm-a', reason: 'ticket 1', pid: 42, host: 'host', ...over })}\n`;
}

function row(time: string, kind: AuditEntry['kind'], key: string, over: Partial<AuditEntry> = {}): AuditRow {
  return { time, kind, source: 'service', actor: 'admin@internal-authz', pointId: null, vmKey: null, reason: null, details: null, originKey: key, ...over };
}

describe('the audit table', () => {
  test('is append-only: UPDATE and DELETE are refused by SQLite itself, even from another connection', () => {
    const { catalog, file } = newCatalog();
    expect(catalog.audit.add([row('2030-01-01T00:00:00.000Z', 'restore', 'k1')])).toBe(1);
    const db = new Database(file);
    try {
      expect(() => db.prepare("UPDATE audit SET actor = 'someone else'").run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
      // REPLACE deletes without delete triggers: refused by its own trigger, or skipped
      expect(() => db.prepare("INSERT OR REPLACE INTO audit (seq, time, source, origin_key, actor, action) VALUES (1, 't', 'service', 'k9', 'x', 'gc')").run()).toThrow(/append-only/);
      expect(db.prepare("INSERT OR REPLACE INTO audit (time, source, origin_key, actor, action) VALUES ('t', 'service', 'k1', 'x', 'gc')").run().changes).toBe(0);
      expect(() => db.prepare("INSERT INTO audit (time, source, origin_key, actor, action) VALUES ('t', 'service', 'k2', 'x', 'gc') ON CONFLICT DO UPDATE SET actor = 'y'").run()).not.toThrow();
      expect(() => db.prepare("INSERT INTO audit (time, source, origin_key, actor, action) VALUES ('t', 'service', 'k2', 'x', 'gc') ON CONFLICT DO UPDATE SET actor = 'y'").run()).not.toThrow();
      expect(db.prepare("SELECT actor FROM audit WHERE origin_key = 'k2'").all()).toEqual([{ actor: 'x' }]);
      db.prepare("DELETE FROM audit WHERE 0").run(); // touches no row: nothing to refuse
      expect(() => db.prepare("DELETE FROM audit WHERE origin_key = 'k2'").run()).toThrow(/append-only/);
      expect(db.prepare("SELECT actor FROM audit WHERE origin_key = 'k1'").all()).toEqual([{ actor: 'admin@internal-authz' }]);
    } finally {
      db.close();
    }
  });

  test('a row already there (same source and origin) is not added twice', () => {
    const { catalog } = newCatalog();
    const r = row('2030-01-01T00:00:00.000Z', 'policy-create', 'k1');
    expect(catalog.audit.add([r, r])).toBe(1);
    expect(catalog.audit.add([r, { ...r, source: 'repository' }])).toBe(1); // another file: another record
    expect(catalog.audit.list({ limit: 10 }).entries).toHaveLength(2);
  });

  test('lists newest first with filters (since, until, actions, a VM also named by a policy) and keyset pages', () => {
    const { catalog } = newCatalog();
    const rows: AuditRow[] = [];
    for (let i = 0; i < 7; i++) rows.push(row(`2030-01-0${i + 1}T00:00:00.000Z`, i % 2 === 0 ? 'restore' : 'policy-update', `k${i}`, i % 2 === 0 ? { vmKey: `vm-${i}` } : { details: { vmIds: ['vm-0', 'vm-x'] } }));
    // two records of one write share a time: newest first keeps them in reverse write order
    rows.push(row('2030-01-07T00:00:00.000Z', 'gc', 'k7'));
    catalog.audit.add(rows);
    const all = catalog.audit.list({ limit: 100 });
    expect(all.nextCursor).toBeNull();
    expect(all.entries.map((e) => e.time.slice(8, 10) + e.kind)).toEqual(['07gc', '07restore', '06policy-update', '05restore', '04policy-update', '03restore', '02policy-update', '01restore']);

    expect(catalog.audit.list({ limit: 100, since: '2030-01-03T00:00:00.000Z', until: '2030-01-05T00:00:00.000Z' }).entries.map((e) => e.time.slice(8, 10))).toEqual(['04', '03']);
    expect(catalog.audit.list({ limit: 100, actions: ['gc', 'policy-update'] }).entries.map((e) => e.kind)).toEqual(['gc', 'policy-update', 'policy-update', 'policy-update']);
    expect(catalog.audit.list({ limit: 100, actions: [] }).entries).toEqual([]);
    expect(catalog.audit.list({ limit: 100, vmKey: 'vm-0' }).entries.map((e) => e.time.slice(8, 10) + e.kind)).toEqual(['06policy-update', '04policy-update', '02policy-update', '01restore']);

    // pages of 3 give the whole list once, in order, while new records arrive at the top
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const p = catalog.audit.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...p.entries.map((e) => e.time.slice(8, 10) + e.kind));
      if (page === 0) catalog.audit.add([row('2030-02-01T00:00:00.000Z', 'restore', 'k-new')]);
      if (!p.nextCursor) break;
      cursor = p.nextCursor;
    }
    expect(seen).toEqual(all.entries.map((e) => e.time.slice(8, 10) + e.kind));
    // with a filter too
    const first = catalog.audit.list({ limit: 1, actions: ['restore'], until: '2030-01-06T00:00:00.000Z' });
    expect(catalog.audit.list({ limit: 10, actions: ['restore'], until: '2030-01-06T00:00:00.000Z', cursor: first.nextCursor! }).entries.map((e) => e.time.slice(8, 10))).toEqual(['03', '01']);

    for (const bad of ['nonsense', '2030-01-01T00:00:00.000Z|x', '2030-01-01T00:00:00.000Z|0', '|5']) {
      expect(() => catalog.audit.list({ limit: 1, cursor: bad })).toThrow(AppError);
    }
  });
});

describe('importing an audit file into the table', () => {
  test('incremental: only what was appended is read; a cut-short last line waits for its end; a restart adds nothing', async () => {
    const { catalog, file } = newCatalog();
    const log = path.join(dir, `audit-${++n}.log`);
    const imp = new AuditImporter(catalog.audit, 'repository', log);
    expect(await imp.run()).toBe(0); // no file yet: nothing recorded

    await fs.writeFile(log, repoLine('2030-01-01T00:00:00.000Z', 'lock-extend') + repoLine('2030-01-01T00:00:01Z', 'unlock', { details: { from: 'a', to: null } }));
    expect(await imp.run()).toBe(2);
    expect(await imp.run()).toBe(0);
    const mark = catalog.audit.importMark('repository')!;
    expect(mark.readTo).toBe((await fs.stat(log)).size);

    // a writer is half-way through a line: it is not read (nor skipped) until it is whole
    const third = repoLine('2030-01-01T00:00:02.000Z', 'delete');
    await fs.appendFile(log, third.slice(0, 40));
    expect(await imp.run()).toBe(0);
    expect(catalog.audit.importMark('repository')!.readTo).toBe(mark.readTo);
    await fs.appendFile(log, third.slice(40) + 'not json\n' + repoLine('2030-01-01T00:00:03.000Z', 'gc', { pointId: null, vmKey: null }));
    expect(await imp.run()).toBe(2);

    const entries = catalog.audit.list({ limit: 10 }).entries;
    expect(entries.map((e) => [e.kind, e.source])).toEqual([
      ['gc', 'repository'],
      ['delete', 'repository'],
      ['unlock', 'repository'],
      ['lock-extend', 'repository'],
    ]);
    // times stored as toISOString writes them; pid and host are not part of an entry
    expect(entries[2]).toEqual({ time: '2030-01-01T00:00:01.000Z', kind: 'unlock', source: 'repository', actor: 'cli:alice@host', pointId: 'p1', vmKey: 'vm-a', reason: 'ticket 1', details: { from: 'a', to: null } });

    // another process (a restarted service) with the same catalog: nothing added twice, even
    // when its mark is lost and it reads the whole file again
    const again = Catalog.open(file);
    open.push(again);
    expect(await new AuditImporter(again.audit, 'repository', log).run()).toBe(0);
    again.transaction(() => again.audit.addImported('repository', [], { readTo: 0, head: '' }));
    expect(await new AuditImporter(again.audit, 'repository', log).run()).toBe(0);
    expect(again.audit.list({ limit: 10 }).entries).toHaveLength(4);
  });

  test('a file that is not the one the mark was made on (replaced, or shorter) is read from its start', async () => {
    const { catalog } = newCatalog();
    const log = path.join(dir, `audit-${++n}.log`);
    const imp = new AuditImporter(catalog.audit, 'repository', log);
    await fs.writeFile(log, repoLine('2030-01-01T00:00:00.000Z', 'prune') + repoLine('2030-01-01T00:00:00.000Z', 'prune', { pointId: 'p2' }));
    expect(await imp.run()).toBe(2);
    // another repository's log in its place, longer than the mark
    await fs.writeFile(log, repoLine('2031-01-01T00:00:00.000Z', 'delete').repeat(3));
    expect(await imp.run()).toBe(3);
    // shorter than the mark
    await fs.writeFile(log, repoLine('2032-01-01T00:00:00.000Z', 'gc'));
    expect(await imp.run()).toBe(1);
    expect(catalog.audit.list({ limit: 10 }).entries).toHaveLength(6);
  });

  test("the service's own file: a record the table missed is filled in, one it has is not repeated", async () => {
    const { catalog } = newCatalog();
    const log = path.join(dir, `service-${++n}.log`);
    const a: AuditEntry = { time: '2030-01-01T00:00:00.000Z', kind: 'policy-create', source: 'service', actor: 'admin', pointId: null, vmKey: null, reason: null, details: { name: 'nightly', vmIds: [] } };
    const b: AuditEntry = { ...a, kind: 'restore', pointId: 'p1', vmKey: 'vm-a', details: null };
    const lineA = JSON.stringify(a);
    await fs.writeFile(log, `${lineA}\n${JSON.stringify(b)}\n{"time":"2030-01-01T00:00:00.000Z","kind":"resto\n${JSON.stringify({ ...a, kind: '' })}\n`);
    // what the service inserted when it wrote the first line
    catalog.audit.add([{ ...a, originKey: auditOriginKey(0, lineA) }]);
    expect(await new AuditImporter(catalog.audit, 'service', log).run()).toBe(1);
    expect(catalog.audit.list({ limit: 10 }).entries.map((e) => e.kind)).toEqual(['restore', 'policy-create']);
  });
});
