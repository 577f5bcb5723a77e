import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import Database from 'better-sqlite3';
import type { Job, JobState } from '../../backend/src/api/contract';
import { Catalog, encodeCursor, toPointSummary } from '../../backend/src/catalog';
import { INTERRUPTED_ERROR, type JobPatch } from '../../backend/src/jobs';
import { jobsOf } from '../helpers/stores';
import { migrate, openDatabase, userVersion } from '../../backend/src/catalog/db';
import { MIGRATIONS } from '../../backend/src/catalog/schema';
import { AppError, type ErrorCode } from '../../backend/src/errors';
import { newPointId, type Manifest, type ManifestDisk, type VmIdentity } from '../../backend/src/repository';

const MiB = 1 << 20;

let dir: string;
const open: Catalog[] = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-catalog-test-'));
});
afterAll(async () => {
  for (const c of open) c.close();
  await fs.rm(dir, { recursive: true, force: true });
});

let n = 0;
/** A fresh catalog file in a not-yet-existing subdirectory (open creates it). */
function newCatalog(): { catalog: Catalog; file: string } {
  const file = path.join(dir, `c${++n}`, 'catalog.db');
  const catalog = Catalog.open(file);
  open.push(catalog);
  return { catalog, file };
}

function expectCode(fn: () => unknown, code: ErrorCode): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe(code);
    return err as AppError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

/** Inserts a job with the spec its fields imply (a plain backup). */
function insert(c: Catalog, j: Job): void {
  jobsOf(c).insertJob(j, { v: 1, kind: 'backup', forceFull: j.forceFull, consistency: 'auto', lockDays: 0, origin: null });
}

function job(id: string, vmId: string, createdMinute: number, state: JobState = 'queued'): Job {
  return {
    id,
    kind: 'backup',
    state,
    vmId,
    vmName: `name-${vmId}`,
    hostId: null,
    requestedBy: { id: 'u1', name: 'admin@internal' },
    forceFull: false,
    restore: null,
    createdAt: at(createdMinute),
    startedAt: null,
    finishedAt: null,
    cancelRequested: false,
    progress: null,
    result: null,
    error: null,
  };
}

function succeeded(j: Job, bytesRead: number, bytesStored: number, durationMs: number, finishedMinute: number): Job {
  return {
    ...j,
    state: 'succeeded',
    startedAt: j.createdAt,
    finishedAt: at(finishedMinute),
    result: { pointId: newPointId(), bytesRead, bytesStored, durationMs, disks: [], warnings: [] },
  };
}

function disk(device: string, over: Partial<ManifestDisk> = {}): ManifestDisk {
  const virtualSize = over.virtualSize ?? 4 * MiB;
  return {
    device,
    node: `node-${device}`,
    format: 'qcow2',
    virtualSize,
    mode: 'full',
    reason: 'first-backup',
    bitmap: `olvm-backup-${device}`,
    bitmapPersistent: true,
    bytesRead: 3 * MiB,
    chunksNew: 3,
    chunksReused: 0,
    chunksZero: 1,
    bytesStored: MiB,
    index: { file: `${device}.index`, sha256: 'a'.repeat(64), chunkCount: Math.ceil(virtualSize / MiB) },
    ...over,
  };
}

function manifest(vm: VmIdentity, createdMinute: number, disks: ManifestDisk[] = [disk('virtio-disk0')], meta: Record<string, unknown> = {}): Manifest {
  const created = new Date(T0 + createdMinute * 60_000);
  return {
    format: 'olvm-backup-point',
    version: 1,
    pointId: newPointId(created),
    vm,
    createdAt: created.toISOString(),
    completedAt: new Date(created.getTime() + 42_500).toISOString(),
    parentPointId: null,
    consistency: 'crash',
    chunkSize: MiB,
    disks,
    vmDefinition: { kind: 'ovf', content: '<ovf/>' },
    lockedUntil: null,
    meta,
  };
}

const vmA: VmIdentity = { key: 'aaaa', name: 'alpha', id: 'aaaa' };
const vmB: VmIdentity = { key: 'beta', name: 'beta' };

describe('catalog jobs', () => {
  test('insert, get, update; unknown and duplicate jobs are refused', () => {
    const { catalog } = newCatalog();
    const j = job('j1', 'vm1', 0);
    insert(catalog, j);
    expect(jobsOf(catalog).getJob('j1')).toEqual(j);
    expect(jobsOf(catalog).getJob('nope')).toBeUndefined();
    expectCode(() => insert(catalog, j), 'INVALID_ARGUMENT');

    const progress = {
      phase: 'copying' as const,
      disk: 'os',
      bytesDone: 10,
      bytesTotal: 100,
      disksDone: 0,
      disksTotal: 1,
      rateBytesPerSec: 5,
      etaSeconds: 18,
      updatedAt: at(1),
    };
    const running = jobsOf(catalog).updateJob('j1', { state: 'running', startedAt: at(1), hostId: 'h1', progress, cancelRequested: true });
    expect(running).toEqual({ ...j, state: 'running', startedAt: at(1), hostId: 'h1', progress, cancelRequested: true });
    expect(jobsOf(catalog).getJob('j1')).toEqual(running);
    // undefined leaves a field alone, null clears it
    const cleared = jobsOf(catalog).updateJob('j1', { progress: null, hostId: undefined, error: { code: 'X', message: 'y' } });
    expect(cleared).toEqual({ ...running, progress: null, error: { code: 'X', message: 'y' } });

    // fields outside the patchable ones are ignored, even when the object carries them
    const sneaky = { state: 'failed', vmId: 'other', id: 'j2' } as unknown as JobPatch;
    expect(jobsOf(catalog).updateJob('j1', sneaky)).toEqual({ ...cleared, state: 'failed' });

    const err = expectCode(() => jobsOf(catalog).updateJob('ghost', { state: 'failed' }), 'INVALID_ARGUMENT');
    expect(err.message).toContain('ghost');
  });

  test('list newest first, paged by cursor, filtered by state and by thousands of VM ids', () => {
    const { catalog } = newCatalog();
    const all: Job[] = [];
    for (let i = 0; i < 25; i++) {
      // pairs share a creation time: the id breaks the tie
      const j = job(`job-${String(i).padStart(2, '0')}`, i % 2 === 0 ? 'vm-even' : 'vm-odd', Math.floor(i / 2), i < 3 ? 'running' : 'succeeded');
      insert(catalog, j);
      all.push(j);
    }
    const newestFirst = [...all].sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1));

    const pages: Job[][] = [];
    let before: string | undefined;
    for (;;) {
      const page = jobsOf(catalog).listJobs({ limit: 10, ...(before !== undefined ? { before } : {}) });
      pages.push(page.jobs);
      if (page.nextBefore === null) break;
      before = page.nextBefore;
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(newestFirst);
    // exactly full last page: no dangling empty page
    expect(jobsOf(catalog).listJobs({ limit: 25 }).nextBefore).toBeNull();

    expect(jobsOf(catalog).listJobs({ limit: 100, states: ['running'] }).jobs.map((j) => j.id)).toEqual(['job-02', 'job-01', 'job-00']);
    expect(jobsOf(catalog).listJobs({ limit: 100, states: [] }).jobs).toEqual([]);

    const many = Array.from({ length: 2000 }, (_, i) => `other-vm-${i}`);
    many.splice(1234, 0, 'vm-odd');
    const odd = jobsOf(catalog).listJobs({ limit: 100, vmIds: many });
    expect(odd.jobs.map((j) => j.id)).toEqual(newestFirst.filter((j) => j.vmId === 'vm-odd').map((j) => j.id));
    const oddRunning = jobsOf(catalog).listJobs({ limit: 1, vmIds: many, states: ['running'] });
    expect(oddRunning.jobs.map((j) => j.id)).toEqual(['job-01']);
    expect(oddRunning.nextBefore).toBeNull();
    expect(jobsOf(catalog).listJobs({ limit: 10, vmIds: [] }).jobs).toEqual([]);

    expectCode(() => jobsOf(catalog).listJobs({ limit: 10, before: 'garbage' }), 'INVALID_ARGUMENT');
    expectCode(() => jobsOf(catalog).listJobs({ limit: 0 }), 'INVALID_ARGUMENT');

    const last = jobsOf(catalog).lastJobByVm(['vm-even', 'vm-odd', 'vm-none']);
    expect([...last.keys()].sort()).toEqual(['vm-even', 'vm-odd']);
    expect(last.get('vm-even')?.id).toBe('job-24');
    expect(last.get('vm-odd')?.id).toBe('job-23');
  });

  test('active jobs oldest first; markRunningInterrupted leaves queued jobs queued', () => {
    const { catalog } = newCatalog();
    insert(catalog, job('q2', 'vm1', 5, 'queued'));
    insert(catalog, job('r1', 'vm2', 1, 'running'));
    insert(catalog, job('q1', 'vm3', 3, 'queued'));
    insert(catalog, job('done', 'vm4', 0, 'failed'));
    expect(jobsOf(catalog).activeJobs().map((j) => j.id)).toEqual(['r1', 'q1', 'q2']);

    const now = at(60);
    const changed = jobsOf(catalog).markRunningInterrupted(now);
    expect(changed).toEqual([{ ...job('r1', 'vm2', 1, 'running'), state: 'interrupted', finishedAt: now, error: { ...INTERRUPTED_ERROR } }]);
    expect(changed[0]?.error).toEqual({ code: 'JOB_INTERRUPTED', message: 'the backup service stopped while this job ran' });
    expect(jobsOf(catalog).getJob('r1')).toEqual(changed[0]);
    expect(jobsOf(catalog).jobLog('r1')).toEqual([{ at: now, level: 'error', message: expect.stringContaining('service stopped') as unknown }]);
    expect(jobsOf(catalog).activeJobs().map((j) => j.id)).toEqual(['q1', 'q2']);
    expect(jobsOf(catalog).markRunningInterrupted(at(61))).toEqual([]);
  });

  test('log lines come back oldest first; the limit keeps the newest', () => {
    const { catalog } = newCatalog();
    insert(catalog, job('j', 'vm', 0));
    insert(catalog, job('k', 'vm', 1));
    for (let i = 0; i < 5; i++) {
      jobsOf(catalog).appendLog('j', { at: at(i), level: i === 4 ? 'error' : 'info', message: `line ${i}` });
      jobsOf(catalog).appendLog('k', { at: at(i), level: 'warn', message: `other ${i}` });
    }
    expect(jobsOf(catalog).jobLog('j').map((e) => e.message)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
    expect(jobsOf(catalog).jobLog('j', 2)).toEqual([
      { at: at(3), level: 'info', message: 'line 3' },
      { at: at(4), level: 'error', message: 'line 4' },
    ]);
    expect(jobsOf(catalog).jobLog('nobody')).toEqual([]);
    expect(expectCode(() => jobsOf(catalog).appendLog('nobody', { at: at(0), level: 'info', message: 'x' }), 'INVALID_ARGUMENT').message).toContain('nobody');
  });

  test('facts merge shallowly and are not part of the job; the spec comes back as stored', () => {
    const { catalog } = newCatalog();
    const j = job('j', 'vm', 0);
    const spec = { v: 1, kind: 'restore', pointId: 'p1', request: { mode: 'vm', vmName: 'x' }, target: 'x' } as const;
    jobsOf(catalog).insertJob({ ...j, kind: 'restore' }, spec);
    expect(jobsOf(catalog).jobFacts('j')).toEqual({});
    jobsOf(catalog).rememberFacts('j', { vmStartedByJob: true, verifiedVmKeys: { a: 'vm1' } });
    jobsOf(catalog).rememberFacts('j', { verifiedVmKeys: { b: 'vm2' } });
    jobsOf(catalog).rememberFacts('j', { vmStoppedAgain: true });
    expect(jobsOf(catalog).jobFacts('j')).toEqual({ vmStartedByJob: true, vmStoppedAgain: true, verifiedVmKeys: { b: 'vm2' } });
    expect(jobsOf(catalog).getJob('j')).toEqual({ ...j, kind: 'restore' });
    expect(jobsOf(catalog).jobSpec('j')).toEqual(spec);
    expectCode(() => jobsOf(catalog).jobFacts('ghost'), 'INVALID_ARGUMENT');
    expectCode(() => jobsOf(catalog).jobSpec('ghost'), 'INVALID_ARGUMENT');
    expectCode(() => jobsOf(catalog).rememberFacts('ghost', { vmStoppedAgain: true }), 'INVALID_ARGUMENT');
  });

  test('counts by state and totals of succeeded jobs', () => {
    const { catalog } = newCatalog();
    expect(jobsOf(catalog).jobCounts()).toEqual({ queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, interrupted: 0 });
    expect(jobsOf(catalog).jobTotals()).toEqual({ bytesRead: 0, bytesStored: 0, succeeded: 0, durationsMs: [] });

    insert(catalog, job('q', 'vm', 0, 'queued'));
    insert(catalog, job('r', 'vm', 0, 'running'));
    insert(catalog, { ...job('f', 'vm', 0, 'failed'), error: { code: 'E', message: 'm' } });
    insert(catalog, succeeded(job('s1', 'vm', 1), 100, 40, 1500, 10));
    insert(catalog, succeeded(job('s2', 'vm', 2), 7 * MiB, 3 * MiB, 2500, 12));
    expect(jobsOf(catalog).jobCounts()).toEqual({ queued: 1, running: 1, succeeded: 2, failed: 1, cancelled: 0, interrupted: 0 });
    expect(jobsOf(catalog).jobTotals()).toEqual({ bytesRead: 100 + 7 * MiB, bytesStored: 40 + 3 * MiB, succeeded: 2, durationsMs: [2500, 1500] });
  });
});

describe('catalog points', () => {
  test('the summary mapping takes engine disk ids from the disk meta, null without them', () => {
    const m = manifest(vmA, 0, [disk('sda', { meta: { diskId: 'd-1', alias: 'os', description: '' } }), disk('sdb', { virtualSize: 2 * MiB })], {
      jobId: 'job-9',
    });
    const s = toPointSummary(m);
    expect(s).toMatchObject({ id: m.pointId, vmId: 'aaaa', vmName: 'alpha', virtualSize: 6 * MiB, bytesRead: 6 * MiB, bytesStored: 2 * MiB });
    expect(s.durationSeconds).toBe(42.5);
    expect(s.disks.map((d) => [d.device, d.diskId, d.alias])).toEqual([
      ['sda', 'd-1', 'os'],
      ['sdb', null, null],
    ]);
    expect(toPointSummary(manifest(vmB, 0)).vmId).toBe('beta'); // no engine id: the repository key
  });

  test('indexing is idempotent; list, get, last and count by VM; paging; removal', () => {
    const { catalog, file } = newCatalog();
    const a1 = manifest(vmA, 0);
    const a2 = manifest(vmA, 10, [disk('virtio-disk0', { mode: 'incremental', reason: 'incremental' })], { jobId: 'j-a2' });
    const b1 = manifest(vmB, 5);
    for (const m of [a1, b1, a2]) catalog.points.indexPoint(m);

    const dump = (): unknown[] => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT * FROM points ORDER BY id').all();
      } finally {
        db.close();
      }
    };
    const before = dump();
    catalog.points.indexPoint(a2);
    catalog.points.indexPoint(a1);
    expect(dump()).toEqual(before);
    expect(before).toHaveLength(3);

    expect(catalog.points.listPoints().map((p) => p.id)).toEqual([a2.pointId, b1.pointId, a1.pointId]);
    expect(catalog.points.listPoints({ vmId: 'aaaa' })).toEqual([toPointSummary(a2), toPointSummary(a1)]);
    expect(catalog.points.listPoints({ limit: 1 }).map((p) => p.id)).toEqual([a2.pointId]);
    const first = catalog.points.listPoints({ limit: 2 });
    const cursor = encodeCursor(first[1] ?? { createdAt: '', id: '' });
    expect(catalog.points.listPoints({ limit: 2, before: cursor }).map((p) => p.id)).toEqual([a1.pointId]);
    expect(catalog.points.getPoint(b1.pointId)).toEqual(toPointSummary(b1));
    expect(catalog.points.getPoint('none')).toBeUndefined();

    const last = catalog.points.lastPointByVm(['aaaa', 'beta', 'gamma']);
    expect([...last.entries()].map(([vm, p]) => [vm, p.id]).sort()).toEqual([
      ['aaaa', a2.pointId],
      ['beta', b1.pointId],
    ]);
    const many = Array.from({ length: 3000 }, (_, i) => `vm-${i}`).concat(['aaaa', 'beta']);
    const counts = catalog.points.pointCountByVm(many);
    expect(counts.get('aaaa')).toBe(2);
    expect(counts.get('beta')).toBe(1);
    expect(counts.get('vm-7')).toBe(0);
    expect(catalog.points.lastPointByVm(many).size).toBe(2);

    expect(catalog.points.removePoint(a2.pointId)).toBe(true);
    expect(catalog.points.removePoint(a2.pointId)).toBe(false);
    expect(catalog.points.lastPointByVm(['aaaa']).get('aaaa')?.id).toBe(a1.pointId);
  });

  test('repository totals', () => {
    const { catalog } = newCatalog();
    expect(catalog.points.repositoryTotals()).toEqual({
      pointCount: 0,
      vmCount: 0,
      chunkCount: 0,
      usedBytes: 0,
      logicalBytes: 0,
      referencedBytes: 0,
      chunkSize: 0,
    });
    // 2.5 MiB disk, 3 chunks, 1 zero: 2 whole chunks referenced (2 MiB)
    const d1 = disk('a', { virtualSize: 2.5 * MiB, chunksNew: 2, chunksZero: 1, bytesStored: 1000, index: { file: 'a.i', sha256: 'b'.repeat(64), chunkCount: 3 } });
    // 1.5 MiB disk, 2 chunks, none zero: 2 chunks would be 2 MiB, capped at the disk's 1.5 MiB
    const d2 = disk('b', { virtualSize: 1.5 * MiB, chunksNew: 1, chunksZero: 0, bytesStored: 500, index: { file: 'b.i', sha256: 'c'.repeat(64), chunkCount: 2 } });
    // incremental of the first: nothing new
    const d3 = disk('a', { virtualSize: 2.5 * MiB, chunksNew: 0, chunksReused: 2, chunksZero: 1, bytesStored: 0, index: { file: 'a.i', sha256: 'd'.repeat(64), chunkCount: 3 } });
    catalog.points.indexPoint(manifest(vmA, 0, [d1, d2]));
    const later = manifest(vmB, 10, [d3]);
    later.chunkSize = 2 * MiB; // the newest point's chunk size is reported
    later.disks[0] = { ...d3, index: { ...d3.index, chunkCount: 2 }, chunksZero: 0 };
    catalog.points.indexPoint(later);
    expect(catalog.points.repositoryTotals()).toEqual({
      pointCount: 2,
      vmCount: 2,
      chunkCount: 3,
      usedBytes: 1500,
      logicalBytes: 2.5 * MiB + 1.5 * MiB + 2.5 * MiB,
      referencedBytes: 2 * MiB + 1.5 * MiB + 2.5 * MiB /* 2 chunks × 2 MiB capped at 2.5 MiB */,
      chunkSize: 2 * MiB,
    });
  });

  test('replaceAllPoints swaps the whole index', () => {
    const { catalog } = newCatalog();
    catalog.points.indexPoint(manifest(vmA, 0));
    catalog.points.indexPoint(manifest(vmA, 1));
    const fresh = [manifest(vmB, 2), manifest(vmB, 3)];
    catalog.points.replaceAllPoints(fresh);
    expect(catalog.points.listPoints().map((p) => p.id)).toEqual(fresh.map((m) => m.pointId).reverse());
    catalog.points.replaceAllPoints([]);
    expect(catalog.points.pointIds()).toEqual([]);
  });
});

describe('catalog file', () => {
  test('a catalog opened again from its file keeps jobs, logs, meta and points', () => {
    const { catalog, file } = newCatalog();
    const j = succeeded(job('j', 'vm', 0), 1, 2, 3, 4);
    const m = manifest(vmA, 0);
    catalog.transaction(() => {
      insert(catalog, j);
      jobsOf(catalog).appendLog('j', { at: at(0), level: 'info', message: 'hello' });
      jobsOf(catalog).rememberFacts('j', { vmStartedByJob: true });
      catalog.points.indexPoint(m);
    });
    catalog.close();
    catalog.close(); // idempotent

    const again = Catalog.open(file);
    open.push(again);
    expect(jobsOf(again).getJob('j')).toEqual(j);
    expect(jobsOf(again).jobLog('j')).toEqual([{ at: at(0), level: 'info', message: 'hello' }]);
    expect(jobsOf(again).jobFacts('j')).toEqual({ vmStartedByJob: true });
    expect(again.points.getPoint(m.pointId)).toEqual(toPointSummary(m));
    expect(() => again.ping()).not.toThrow();
  });

  test('a failed transaction leaves nothing behind', () => {
    const { catalog } = newCatalog();
    expect(() =>
      catalog.transaction(() => {
        insert(catalog, job('j', 'vm', 0));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(jobsOf(catalog).getJob('j')).toBeUndefined();
  });

  test('migrations run once: a second run is a no-op', () => {
    const file = path.join(dir, 'migrate', 'm.db');
    const db = openDatabase(file, MIGRATIONS);
    try {
      expect(userVersion(db)).toBe(MIGRATIONS.length);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['audit', 'audit_import', 'job_log', 'jobs', 'points', 'policies', 'policy_run_vms', 'policy_runs', 'sqlite_sequence']);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(migrate(db, MIGRATIONS)).toBe(0);
      expect(migrate(db, MIGRATIONS)).toBe(0);
      expect(userVersion(db)).toBe(MIGRATIONS.length);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    } finally {
      db.close();
    }
    // a later release adds a step: only that one runs
    const db2 = openDatabase(file, [...MIGRATIONS, 'CREATE TABLE extra (x INTEGER)']);
    try {
      expect(userVersion(db2)).toBe(MIGRATIONS.length + 1);
      expect(migrate(db2, [...MIGRATIONS, 'CREATE TABLE extra (x INTEGER)'])).toBe(0);
    } finally {
      db2.close();
    }
    // and this release refuses that newer schema
    const err = expectCode(() => Catalog.open(file), 'CATALOG_ERROR');
    expect(err.message).toContain(file);
    expect(err.message).toContain('newer');
  });

  test('migration 6 turns the loose specs older versions kept in meta into typed specs', () => {
    const file = path.join(dir, 'migrate6', 'm.db');
    const db = openDatabase(file, MIGRATIONS.slice(0, 5));
    const insert = db.prepare(
      'INSERT INTO jobs (id, kind, state, vm_id, vm_name, requested_by_id, requested_by_name, force_full, created_at, meta, restore) ' +
        "VALUES (?, ?, 'succeeded', 'vm', 'vm', 'u', 'admin', ?, '2026-01-01T00:00:00.000Z', ?, ?)",
    );
    const request = { mode: 'vm', vmName: 'web01-copy', regenerateIds: true };
    insert.run('b-plain', 'backup', 1, '{"vmStartedByJob":true}', null);
    insert.run('b-policy', 'backup', 0, JSON.stringify({ policyRunId: 'r1', policyId: 'p1', policyName: 'nightly', trigger: 'catch-up', consistency: 'crash', vmStoppedAgain: true }), null);
    insert.run('r', 'restore', 0, JSON.stringify({ request }), JSON.stringify({ pointId: 'pt1', mode: 'vm', target: 'web01-copy' }));
    insert.run('v-point', 'verify', 0, '{"pointId":"pt2"}', null);
    insert.run('v-vm', 'verify', 0, JSON.stringify({ vmKey: 'vm9', policyId: 'p2', verifyScheduledAt: '2026-01-01T04:00:00.000Z', trigger: 'schedule' }), null);
    insert.run('v-repo', 'verify', 0, JSON.stringify({ verifiedVmKeys: { pt3: 'vm3' } }), null);
    db.close();

    const catalog = Catalog.open(file);
    open.push(catalog);
    const jobs = jobsOf(catalog);
    expect(jobs.jobSpec('b-plain')).toEqual({ v: 1, kind: 'backup', forceFull: true, consistency: 'auto', lockDays: 0, origin: null });
    expect(jobs.jobSpec('b-policy')).toEqual({ v: 1, kind: 'backup', forceFull: false, consistency: 'crash', lockDays: 0, origin: { policyId: 'p1', policyName: 'nightly', runId: 'r1', trigger: 'catch-up', scheduledAt: null } });
    expect(jobs.jobSpec('r')).toEqual({ v: 1, kind: 'restore', pointId: 'pt1', request, target: 'web01-copy' });
    expect(jobs.jobSpec('v-point')).toEqual({ v: 1, kind: 'verify', target: { pointId: 'pt2' }, origin: null });
    expect(jobs.jobSpec('v-vm')).toEqual({ v: 1, kind: 'verify', target: { vmKey: 'vm9' }, origin: { policyId: 'p2', policyName: '', runId: null, trigger: 'schedule', scheduledAt: '2026-01-01T04:00:00.000Z' } });
    expect(jobs.jobSpec('v-repo')).toEqual({ v: 1, kind: 'verify', target: { repository: true }, origin: null });
    // the facts stay where they were; the old spec keys are not facts
    expect(jobs.jobFacts('b-plain')).toEqual({ vmStartedByJob: true });
    expect(jobs.jobFacts('b-policy')).toEqual({ vmStoppedAgain: true });
    expect(jobs.jobFacts('v-repo')).toEqual({ verifiedVmKeys: { pt3: 'vm3' } });
    expect(jobs.jobFacts('r')).toEqual({});
  });

  test('a file that is not a database is CATALOG_ERROR naming the file', async () => {
    const file = path.join(dir, 'not-a-db.txt');
    await fs.writeFile(file, 'this is not an SQLite database, just some text.\n'.repeat(100));
    const err = expectCode(() => Catalog.open(file), 'CATALOG_ERROR');
    expect(err.message).toBe(`cannot open catalog ${file}`);
    expect(err.cause).toBeDefined();
  });
});
