import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Manifest, VmIdentity } from '../../backend/src/repository';
import { ageChunks, chunkFiles, CS, expectCode, mutate, readImage, scratchRepositories, writePoint } from './retentionFixture';
import { runCli, type CliRun } from '../helpers/cli';

const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
const FUTURE = '2099-01-01T00:00:00.000Z';

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

describe('retention locks, deletion, prune and the audit log', () => {
  const newRepo = scratchRepositories('olvm-retention-');

  test('a locked point cannot be deleted; a lock can only be extended; unlock is audited, then delete works', async () => {
    const repo = await newRepo();
    const m = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(3 * CS) }], { lockedUntil: '2098-06-01T00:00:00.000Z' });

    const refused = await expectCode(repo.deletePoint(m.pointId, { reason: 'tidy up', actor: 'admin@internal' }), 'REPO_POINT_LOCKED');
    expect(refused.message).toContain(m.pointId);
    expect(refused.message).toContain('2098-06-01T00:00:00.000Z');
    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([m.pointId]);

    // shorten: refused, naming the current lock; extend: fine and durable in the manifest
    const shorter = await expectCode(repo.extendLock(m.pointId, '2098-01-01T00:00:00Z', { actor: 'admin@internal' }), 'REPO_POINT_LOCKED');
    expect(shorter.message).toContain('2098-06-01T00:00:00.000Z');
    expect((await repo.extendLock(m.pointId, new Date(FUTURE), { actor: 'admin@internal', reason: 'legal hold' })).lockedUntil).toBe(FUTURE);
    expect((await repo.readManifest(m.pointId)).lockedUntil).toBe(FUTURE);
    await expectCode(repo.extendLock(m.pointId, '2098-12-31T00:00:00Z'), 'REPO_POINT_LOCKED');
    await expectCode(repo.extendLock(m.pointId, 'not a date'), 'INVALID_ARGUMENT');
    expect((await repo.extendLock(m.pointId, FUTURE)).lockedUntil).toBe(FUTURE); // same date: no change
    // the rest of the manifest is untouched by the rewrite
    expect({ ...(await repo.readManifest(m.pointId)), lockedUntil: null }).toEqual({ ...m, lockedUntil: null });

    // a reason and an operator are required to unlock
    await expectCode(repo.unlockPoint(m.pointId, { reason: ' ', operator: 'cli:root@backup' }), 'INVALID_ARGUMENT');
    await expectCode(repo.deletePoint(m.pointId, { reason: '', actor: 'x' }), 'INVALID_ARGUMENT');
    expect((await repo.unlockPoint(m.pointId, { reason: 'ticket 4711: customer asked', operator: 'cli:root@backup' })).lockedUntil).toBeNull();
    const del = await repo.deletePoint(m.pointId, { reason: 'ticket 4711', actor: 'cli:root@backup' });
    expect(del).toEqual({ pointId: m.pointId, vmKey: vmA.key, deferred: false });
    expect(await repo.listPoints()).toEqual([]);
    await expectCode(repo.readManifest(m.pointId), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.deletePoint(m.pointId, { reason: 'again', actor: 'x' }), 'REPO_POINT_NOT_FOUND');
    expect(await fs.readdir(path.join(repo.dir, 'trash'))).toEqual([]);

    const log = await repo.auditLog();
    expect(log.map((r) => [r.action, r.actor, r.pointId, r.reason])).toEqual([
      ['lock-extend', 'admin@internal', m.pointId, 'legal hold'],
      ['unlock', 'cli:root@backup', m.pointId, 'ticket 4711: customer asked'],
      ['delete', 'cli:root@backup', m.pointId, 'ticket 4711'],
    ]);
    expect(log[0]?.details).toEqual({ from: '2098-06-01T00:00:00.000Z', to: FUTURE });
    expect(log[1]?.details).toEqual({ from: FUTURE });
    expect(log.every((r) => r.vmKey === vmA.key && r.pid === process.pid && typeof r.time === 'string')).toBe(true);
    // append-only JSON lines on disk
    const lines = (await fs.readFile(path.join(repo.dir, 'audit.log'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { action: string }).action)).toEqual(['lock-extend', 'unlock', 'delete']);
    expect(await repo.auditLog({ since: new Date(Date.now() + 60_000) })).toEqual([]);
    // a lock that has run out no longer protects
    const old = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }], { lockedUntil: '2001-01-01T00:00:00.000Z' });
    expect((await repo.deletePoint(old.pointId, { reason: 'expired', actor: 'x' })).deferred).toBe(false);
  });

  test('a line of the audit log a crash cut short does not swallow the next record', async () => {
    const repo = await newRepo();
    const m = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }], { lockedUntil: null });
    await repo.extendLock(m.pointId, FUTURE, { actor: 'first', reason: 'before the crash' });
    // the crash: half a record, no newline
    await fs.appendFile(path.join(repo.dir, 'audit.log'), '{"time":"2026-11-26T10:00:00.000Z","actor":"torn","act');
    await repo.unlockPoint(m.pointId, { reason: 'after the crash', operator: 'cli:root@backup' });
    expect((await repo.auditLog()).map((r) => [r.action, r.reason])).toEqual([
      ['lock-extend', 'before the crash'],
      ['unlock', 'after the crash'],
    ]);
    const lines = (await fs.readFile(path.join(repo.dir, 'audit.log'), 'utf8')).split('\n');
    expect(lines[1]).toMatch(/"actor":"torn","act$/);
    expect(JSON.parse(lines[2]!)).toMatchObject({ action: 'unlock' });
  });

  test('prune keeps what the GFS rules keep per VM, skips locked points, and gc keeps exactly what the kept points need', async () => {
    const repo = await newRepo();
    // VM a: one point a day for 10 days, each an incremental changing one chunk; VM b: 3 points
    const points: Array<{ m: Manifest; image: Buffer }> = [];
    let image: Buffer = randomBytes(4 * CS);
    let parent: Manifest | undefined;
    for (let day = 1; day <= 10; day++) {
      const dirty = parent ? [day % 4] : undefined;
      if (parent) image = mutate(image, dirty as number[]);
      const at = new Date(`2026-03-${String(day).padStart(2, '0')}T02:00:00Z`);
      // the point of day 3 is locked
      const m = await writePoint(repo, vmA, [{ device: 'vda', image, ...(dirty ? { dirty } : {}) }], {
        at,
        ...(parent ? { parent } : {}),
        lockedUntil: day === 3 ? FUTURE : null,
      });
      points.push({ m, image });
      parent = m;
    }
    const b: Manifest[] = [];
    for (let i = 0; i < 3; i++) b.push(await writePoint(repo, vmB, [{ device: 'sda', image: randomBytes(2 * CS) }], { at: new Date(`2026-03-0${i + 1}T05:00:00Z`) }));
    const id = (day: number): string => points[day - 1]!.m.pointId;

    await expectCode(repo.prune({}, { tz: 'UTC' }), 'INVALID_ARGUMENT');
    await expectCode(repo.prune({ daily: 0, keepLast: 0 }, { tz: 'UTC' }), 'INVALID_ARGUMENT');
    await expectCode(repo.prune({ daily: 2 }, { tz: 'Nowhere/Land' }), 'INVALID_ARGUMENT');

    const rules = { keepLast: 1, daily: 3 };
    const dry = await repo.prune(rules, { tz: 'Europe/Paris', dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.rules).toEqual({ keepLast: 1, daily: 3, weekly: 0, monthly: 0, yearly: 0 });
    const decisions = Object.fromEntries(dry.points.map((p) => [p.pointId, [p.action, p.keptBy.join('+')]]));
    expect(decisions[id(10)]).toEqual(['keep', 'last+daily']);
    expect(decisions[id(9)]).toEqual(['keep', 'daily']);
    expect(decisions[id(8)]).toEqual(['keep', 'daily']);
    expect(decisions[id(3)]).toEqual(['locked', '']);
    for (const d of [1, 2, 4, 5, 6, 7]) expect(decisions[id(d)]).toEqual(['remove', '']);
    // VM b is pruned on its own: its newest point is kept by "last" and its 3 days by "daily"
    for (const m of b) expect(decisions[m.pointId]?.[0]).toBe('keep');
    expect(dry.removed.sort()).toEqual([1, 2, 4, 5, 6, 7].map(id).sort());
    expect(dry.locked).toEqual([id(3)]);
    expect(dry.kept).toBe(6);
    expect((await repo.listPoints()).length).toBe(13); // dry run removed nothing
    expect(await repo.auditLog()).toEqual([]);

    // only VM b, which keeps everything
    const onlyB = await repo.prune(rules, { tz: 'UTC', vmKey: vmB.key, actor: 'scheduler' });
    expect(onlyB.points.map((p) => p.vmKey)).toEqual([vmB.key, vmB.key, vmB.key]);
    expect(onlyB.removed).toEqual([]);

    const chunksBefore = (await chunkFiles(repo.dir)).length;
    const real = await repo.prune(rules, { tz: 'Europe/Paris', actor: 'scheduler', reason: 'policy gold' });
    expect(real.removed.sort()).toEqual(dry.removed.sort());
    expect(real.deferred).toEqual([]);
    expect((await repo.listPoints({ vmKey: vmA.key })).map((p) => p.pointId)).toEqual([3, 8, 9, 10].map(id));
    const all = await repo.auditLog();
    // every prune is recorded, also one that removes nothing
    expect(all[0]).toMatchObject({ action: 'prune', actor: 'scheduler', vmKey: vmB.key, details: { remove: [], locked: [], kept: 3 } });
    const log = all.slice(1);
    expect(log[0]).toMatchObject({ action: 'prune', actor: 'scheduler', reason: 'policy gold' });
    expect((log[0]?.details as { locked: string[] }).locked).toEqual([id(3)]);
    expect(log.slice(1).map((r) => [r.action, r.pointId, r.reason]).sort()).toEqual(real.removed.map((p) => ['delete', p, 'policy gold']).sort());

    // gc: the deleted points' chunks go, the locked one's and the kept ones' stay
    await ageChunks(repo.dir, 3600_000);
    const gc = await repo.gc({ graceMs: 0 });
    expect(gc.chunksRemoved).toBeGreaterThan(0);
    expect((await chunkFiles(repo.dir)).length).toBe(chunksBefore - gc.chunksRemoved);
    for (const d of [3, 8, 9, 10]) expect((await readImage(repo, id(d), 'vda')).equals(points[d - 1]!.image)).toBe(true);
    for (const m of b) await readImage(repo, m.pointId, 'sda');
    const v = await repo.verify();
    expect(v.ok).toBe(true);
    // what gc removed is exactly what no remaining point references
    expect(gc.chunksReferenced).toBe((await chunkFiles(repo.dir)).length);
    expect((await repo.auditLog()).pop()).toMatchObject({ action: 'gc', details: { chunksRemoved: gc.chunksRemoved } });

    // the locked point survives a second prune too, and a gc after it
    const again = await repo.prune({ keepLast: 1 }, { tz: 'UTC', vmKey: vmA.key });
    expect(again.locked).toEqual([id(3)]);
    await repo.gc({ graceMs: 0 });
    expect((await readImage(repo, id(3), 'vda')).equals(points[2]!.image)).toBe(true);
  });

  test('deleting the parent of a running backup: it leaves points/ at once and waits in trash/ until that writer is done', async () => {
    const repo = await newRepo();
    const image = randomBytes(4 * CS);
    const p1 = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    // the next backup of vm a is running: it has read p1's index as its base
    const w = await repo.beginPoint({ vm: vmA, pointId: '20990101T000000Z-abcdef', createdAt: new Date(), parentPointId: p1.pointId });
    const base = await repo.readIndex(p1.pointId, 'vda');
    const del = await repo.deletePoint(p1.pointId, { reason: 'test', actor: 'x' });
    expect(del.deferred).toBe(true);
    expect(await repo.listPoints()).toEqual([]);
    expect(await fs.readdir(path.join(repo.dir, 'trash'))).toEqual([p1.pointId]);
    const gc1 = await repo.gc({ graceMs: 0 });
    expect(gc1.trashKept).toEqual([p1.pointId]);
    expect(gc1.chunksRemoved).toBe(0);
    const image2 = mutate(image, [1]);
    const dw = w.beginDisk({ device: 'vda', virtualSize: image.length, base });
    await dw.putChunk(1, Buffer.from(image2.subarray(CS, 2 * CS)));
    await dw.finish();
    const m2 = await w.commit({
      disks: [{ device: 'vda', node: 'n', format: 'qcow2', mode: 'incremental', reason: 'incremental', bitmap: 'b', bitmapPersistent: true, bytesRead: CS }],
      consistency: 'crash',
      vmDefinition: null,
    });
    await ageChunks(repo.dir, 3600_000);
    // the writer is done: p1 leaves trash/ (its chunks were still marked by this run)
    const gc2 = await repo.gc({ graceMs: 0 });
    expect(gc2.trashPurged).toEqual([p1.pointId]);
    expect(gc2.chunksRemoved).toBe(0);
    expect(await fs.readdir(path.join(repo.dir, 'trash'))).toEqual([]);
    const gc3 = await repo.gc({ graceMs: 0 });
    expect(gc3.chunksRemoved).toBe(1); // p1's old chunk 1; the three carried over stay
    expect((await readImage(repo, m2.pointId, 'vda')).equals(image2)).toBe(true);
  });

  test('operator CLI: lock, refused delete, unlock with a warning, delete, prune, gc, audit', async () => {
    const repo = await newRepo();
    const m1 = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }], { at: new Date('2026-01-01T10:00:00Z') });
    const m2 = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }], { at: new Date('2026-01-02T10:00:00Z') });
    const r = repo.dir;

    const lock = await cli('points', 'lock', '--repo', r, '--point', m1.pointId, '--until', '2099-02-01', '--reason', 'hold', '--json');
    expect(lock.stderr).toBe('');
    expect(JSON.parse(lock.stdout)).toEqual({ pointId: m1.pointId, lockedUntil: '2099-02-01T00:00:00.000Z' });
    const shorten = await cli('points', 'lock', '--repo', r, '--point', m1.pointId, '--until', '2099-01-01');
    expect(shorten.code).toBe(1);
    expect(shorten.stderr.trim().split('\n')).toHaveLength(1);
    expect(shorten.stderr).toMatch(/^olvm-backup: .*locked until 2099-02-01T00:00:00.000Z.*only be extended/);

    const refused = await cli('points', 'delete', '--repo', r, '--point', m1.pointId, '--reason', 'cleanup');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(new RegExp(`^olvm-backup: cannot delete: restore point ${m1.pointId} of vm alpha is locked until 2099-02-01T00:00:00.000Z$`));

    const dry = await cli('prune', '--repo', r, '--keep-last', '1', '--tz', 'Europe/Paris', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const dryReport = JSON.parse(dry.stdout) as { removed: string[]; locked: string[]; points: Array<{ pointId: string; action: string; keptBy: string[] }> };
    expect(dryReport.locked).toEqual([m1.pointId]);
    expect(dryReport.points).toMatchObject([
      { pointId: m2.pointId, action: 'keep', keptBy: ['last'] },
      { pointId: m1.pointId, action: 'locked', keptBy: [] },
    ]);
    const human = await cli('prune', '--repo', r, '--keep-last', '1', '--dry-run');
    expect(human.stdout).toMatch(new RegExp(`${m1.pointId}.*skipped.*locked until 2099-02-01`));
    expect(human.stdout).toMatch(/kept by last/);
    expect((await cli('prune', '--repo', r, '--keep-last', 'x')).stderr).toMatch(/--keep-last: 'x' is not a whole number/);
    expect((await cli('prune', '--repo', r)).stderr).toMatch(/keep no point/);

    const unlock = await cli('points', 'unlock', '--repo', r, '--point', m1.pointId, '--reason', 'ticket 99', '--operator', 'jdoe');
    expect(unlock.code).toBe(0);
    expect(unlock.stderr).toMatch(/WARNING: .*support intervention/);
    expect(unlock.stdout).toMatch(/cleared/);
    const del = await cli('points', 'delete', '--repo', r, '--point', m1.pointId, '--reason', 'ticket 99', '--json');
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ pointId: m1.pointId, vmKey: vmA.key, deferred: false });
    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([m2.pointId]);

    await ageChunks(r, 3600_000);
    const gc = await cli('gc', '--repo', r, '--grace', '0', '--json');
    expect(gc.code).toBe(0);
    expect(JSON.parse(gc.stdout)).toMatchObject({ dryRun: false, chunksRemoved: 2, graceMs: 0 });
    expect((await cli('gc', '--repo', r, '--grace', 'soon')).stderr).toMatch(/--grace: 'soon' is not a duration/);
    expect((await cli('gc', '--repo', r, '--grace', '2h', '--dry-run')).stdout).toMatch(/^dry run: would remove 0 chunks/);

    const audit = await cli('audit', '--repo', r, '--json');
    const records = JSON.parse(audit.stdout) as Array<{ action: string; actor: string; reason: string | null }>;
    expect(records.map((x) => x.action)).toEqual(['lock-extend', 'unlock', 'delete', 'gc']);
    expect(records[1]).toMatchObject({ actor: 'cli:jdoe', reason: 'ticket 99' });
    expect(records[0]?.actor).toMatch(/^cli:.+@/);
    expect((await cli('audit', '--repo', r)).stdout).toMatch(/unlock .*ticket 99/);

    // listing still works with the subcommands registered
    expect(JSON.parse((await cli('points', '--repo', r, '--json')).stdout)).toHaveLength(1);
  });

  test('nothing the service, the scheduler or the UI ships calls unlockPoint', async () => {
    const roots = ['backend/src/api', 'backend/src/jobs', 'backend/src/schedule', 'backend/src/catalog', 'ui-plugin/src'].map((d) =>
      path.resolve(__dirname, '../../../', d),
    );
    const offenders: string[] = [];
    const walk = async (d: string): Promise<void> => {
      const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (/\.(ts|tsx|js)$/.test(e.name) && /unlockPoint/.test(await fs.readFile(p, 'utf8'))) offenders.push(p);
      }
    };
    for (const r of roots) await walk(r);
    expect(offenders).toEqual([]);
  });
});
