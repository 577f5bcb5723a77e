import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job, JobResult } from '../../backend/src/api/contract';
import { Catalog } from '../../backend/src/catalog';
import { jobsOf } from '../helpers/stores';
import { AppError } from '../../backend/src/errors';
import { JobQueue, ProgressTracker, type JobRunContext } from '../../backend/src/jobs';

const user = { id: 'u1', name: 'admin@internal-authz' };
const vm = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A runner the test finishes by hand: each started job waits for `finish(vmId)`. */
class ManualRunner {
  readonly started: string[] = [];
  private readonly pending = new Map<string, { ctx: JobRunContext; resolve: (r: JobResult) => void; reject: (e: unknown) => void }>();

  run = (ctx: JobRunContext): Promise<JobResult> =>
    new Promise<JobResult>((resolve, reject) => {
      this.started.push(ctx.job.vmId);
      this.pending.set(ctx.job.vmId, { ctx, resolve, reject });
      // a real backup's cleanup runs, then it rejects with the abort reason
      ctx.signal.addEventListener('abort', () => setTimeout(() => reject(ctx.signal.reason), 5));
    });

  ctx(vmId: string): JobRunContext {
    const p = this.pending.get(vmId);
    if (!p) throw new Error(`no running job for ${vmId}`);
    return p.ctx;
  }

  finish(vmId: string): void {
    const p = this.pending.get(vmId);
    if (!p) throw new Error(`no running job for ${vmId}`);
    this.pending.delete(vmId);
    p.resolve({ pointId: `p-${vmId}`, bytesRead: 1, bytesStored: 1, durationMs: 1, disks: [], warnings: [] });
  }

  fail(vmId: string, err: unknown): void {
    const p = this.pending.get(vmId);
    if (!p) throw new Error(`no running job for ${vmId}`);
    this.pending.delete(vmId);
    p.reject(err);
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await tick();
  }
}

describe('job queue (real SQLite catalog, a runner finished by hand)', () => {
  let dir: string;
  let catalog: Catalog;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-queue-'));
    catalog = Catalog.open(path.join(dir, 'catalog.sqlite'));
  });
  afterEach(async () => {
    catalog.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function queue(runner: ManualRunner, limits = { global: 2, perHost: 1 }): JobQueue {
    const q = new JobQueue({ store: jobsOf(catalog), runner: runner.run, limits, progressIntervalMs: 1000 });
    q.start();
    return q;
  }

  const submit = (q: JobQueue, n: number, hostId: string | null, forceFull = false): { job: Job; joined: boolean } =>
    q.submit({ vmId: vm(n), vmName: `vm${n}`, hostId, requestedBy: user, spec: { v: 1, kind: 'backup', forceFull, consistency: 'auto', lockDays: 0, origin: null } });

  test('admits in arrival order under the global and per-host limits; a finished job lets the next in', async () => {
    const r = new ManualRunner();
    const q = queue(r);
    submit(q, 1, 'h1');
    submit(q, 2, 'h1');
    submit(q, 3, 'h2');
    submit(q, 4, null);
    await until(() => r.started.length === 2, 'two started');
    expect(r.started).toEqual([vm(1), vm(3)]); // vm2 waits for h1, vm4 for a global slot
    r.finish(vm(1));
    await until(() => r.started.length === 3, 'third started');
    expect(r.started[2]).toBe(vm(2));
    r.finish(vm(3));
    await until(() => r.started.length === 4, 'fourth started');
    r.finish(vm(2));
    r.finish(vm(4));
    await until(() => jobsOf(catalog).jobCounts().succeeded === 4, 'all succeeded');
    const log = jobsOf(catalog).jobLog(jobsOf(catalog).listJobs({ vmIds: [vm(2)], limit: 1 }).jobs[0]!.id).map((l) => l.message);
    expect(log).toEqual([expect.stringMatching(/^backup of vm vm2 queued by admin/), 'started', 'succeeded: restore point p-' + vm(2)]);
  });

  test('boot checks run one at a time whatever the per-host limit (each takes a core under TCG); other jobs pass them', async () => {
    const r = new ManualRunner();
    const q = queue(r, { global: 4, perHost: 3 });
    const check = (n: number): Job => q.submit({ vmId: vm(n), vmName: `vm${n}`, hostId: null, requestedBy: user, spec: { v: 1, kind: 'bootcheck', pointId: `p${n}`, disk: null, origin: null } }).job;
    const first = check(1);
    const second = check(2);
    submit(q, 3, null);
    await until(() => r.started.length === 2, 'a boot check and the backup started');
    expect(r.started).toEqual([vm(1), vm(3)]);
    expect(jobsOf(catalog).getJob(second.id)?.state).toBe('queued');
    r.finish(vm(1));
    await until(() => r.started.length === 3, 'the second boot check started');
    expect(r.started[2]).toBe(vm(2));
    r.finish(vm(2));
    r.finish(vm(3));
    await until(() => jobsOf(catalog).jobCounts().succeeded === 3, 'all succeeded');
    expect(jobsOf(catalog).jobLog(first.id).map((l) => l.message)).toEqual([`boot check of point p1 of vm vm1 queued by ${user.name}`, 'started', `succeeded: boot check of restore point p-${vm(1)}`]);
  });

  test('one job per VM: a second request joins, a full one meanwhile is a conflict', () => {
    const r = new ManualRunner();
    const q = queue(r);
    const a = submit(q, 1, 'h1');
    expect(a.joined).toBe(false);
    const b = submit(q, 1, 'h1');
    expect(b).toMatchObject({ joined: true, job: { id: a.job.id } });
    expect(() => submit(q, 1, 'h1', true)).toThrow(expect.objectContaining({ code: 'JOB_CONFLICT' }));
    expect(jobsOf(catalog).activeJobs()).toHaveLength(1);
  });

  test('cancel: a queued job ends at once and never runs; a running one is aborted and ends cancelled after its cleanup', async () => {
    const r = new ManualRunner();
    const q = queue(r, { global: 1, perHost: 1 });
    const a = submit(q, 1, 'h1').job;
    const b = submit(q, 2, 'h1').job;
    await until(() => r.started.length === 1, 'first started');
    expect(q.cancel(b.id, user)).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED' } });
    const running = q.cancel(a.id, user);
    expect(running).toMatchObject({ state: 'running', cancelRequested: true });
    expect(r.ctx(vm(1)).signal.aborted).toBe(true);
    await until(() => jobsOf(catalog).getJob(a.id)?.state === 'cancelled', 'running job cancelled');
    expect(jobsOf(catalog).getJob(a.id)?.error?.message).toMatch(/cancelled by admin/);
    expect(r.started).toEqual([vm(1)]);
    expect(() => q.cancel(a.id, user)).toThrow(expect.objectContaining({ code: 'JOB_NOT_CANCELLABLE' }));
    expect(() => q.cancel('nope', user)).toThrow(expect.objectContaining({ code: 'JOB_NOT_FOUND' }));
  });

  test('a failing runner makes a failed job with its code and message', async () => {
    const r = new ManualRunner();
    const q = queue(r);
    const a = submit(q, 1, 'h1').job;
    await until(() => r.started.length === 1, 'started');
    r.fail(vm(1), new AppError('BACKUP_VM_NO_DISKS', 'vm vm1 has nothing to back up'));
    await until(() => jobsOf(catalog).getJob(a.id)?.state === 'failed', 'failed');
    expect(jobsOf(catalog).getJob(a.id)?.error).toEqual({ code: 'BACKUP_VM_NO_DISKS', message: 'vm vm1 has nothing to back up' });
  });

  test('stop interrupts running jobs after their cleanup and keeps queued ones; the next start runs them', async () => {
    const r = new ManualRunner();
    const q = queue(r, { global: 1, perHost: 1 });
    const a = submit(q, 1, 'h1').job;
    const b = submit(q, 2, 'h2').job;
    await until(() => r.started.length === 1, 'started');
    await q.stop(5_000);
    expect(jobsOf(catalog).getJob(a.id)).toMatchObject({ state: 'interrupted', error: { code: 'JOB_INTERRUPTED' } });
    expect(jobsOf(catalog).getJob(b.id)?.state).toBe('queued');
    expect(() => submit(q, 3, 'h1')).toThrow(expect.objectContaining({ code: 'SERVICE_STOPPING' }));

    const r2 = new ManualRunner();
    queue(r2, { global: 1, perHost: 1 });
    await until(() => r2.started.length === 1, 'queued job runs after restart');
    expect(r2.started).toEqual([vm(2)]);
    r2.finish(vm(2));
    await until(() => jobsOf(catalog).getJob(b.id)?.state === 'succeeded', 'succeeded');
  });

  test('a process that died with a job running: the next start marks it interrupted and does not run it again', async () => {
    const r = new ManualRunner();
    const q = queue(r, { global: 1, perHost: 1 });
    const a = submit(q, 1, 'h1').job;
    await until(() => r.started.length === 1, 'started');
    // no stop(): as after SIGKILL, the catalog still says running
    expect(jobsOf(catalog).getJob(a.id)?.state).toBe('running');
    const r2 = new ManualRunner();
    const q2 = new JobQueue({ store: jobsOf(catalog), runner: r2.run, limits: { global: 1, perHost: 1 } });
    expect(q2.start().map((j) => j.id)).toEqual([a.id]);
    await tick();
    expect(r2.started).toEqual([]);
    expect(jobsOf(catalog).getJob(a.id)?.state).toBe('interrupted');
  });

  test('start-up: the backups of VMs being settled wait for the settlement (bounded), the others run at once', async () => {
    const r = new ManualRunner();
    const q = queue(r, { global: 1, perHost: 1 });
    const dead = submit(q, 1, 'h1').job;
    await until(() => r.started.length === 1, 'started');
    // no stop(): the process dies with vm1's job running (an engine backup left to settle)
    const r2 = new ManualRunner();
    const q2 = new JobQueue({ store: jobsOf(catalog), runner: r2.run, limits: { global: 2, perHost: 2 } });
    let settle = (): void => undefined;
    const settling = new Promise<void>((resolve) => (settle = resolve));
    q2.start((interrupted) => {
      expect(interrupted.map((j) => j.id)).toEqual([dead.id]);
      q2.hold([vm(1)], settling, 60_000);
    });
    const one = submit(q2, 1, 'h1').job;
    submit(q2, 2, 'h2');
    await until(() => r2.started.length === 1, 'the unheld vm runs');
    expect(r2.started).toEqual([vm(2)]);
    await tick();
    expect(jobsOf(catalog).getJob(one.id)?.state).toBe('queued');
    settle();
    await until(() => r2.started.length === 2, 'the held vm runs once settled');
    expect(r2.started).toEqual([vm(2), vm(1)]);
    r2.finish(vm(1));
    r2.finish(vm(2));
    // a settlement that never ends holds for its bound only
    const q3Runner = new ManualRunner();
    await q2.stop(1000);
    const q3 = new JobQueue({ store: jobsOf(catalog), runner: q3Runner.run, limits: { global: 1, perHost: 1 } });
    q3.start(() => q3.hold([vm(3)], new Promise(() => undefined), 100));
    submit(q3, 3, 'h3');
    await tick();
    expect(q3Runner.started).toEqual([]);
    await until(() => q3Runner.started.length === 1, 'released after its bound');
    q3Runner.finish(vm(3));
    await q3.stop(1000);
  });

  test('progress: phase changes go out at once, byte counters at most every interval; rate and ETA follow the bytes', () => {
    let now = 0;
    const t = new ProgressTracker(250, () => now);
    const p = (phase: 'copying' | 'committing', bytesDone: number) => ({ phase, disk: 'd1', bytesDone, bytesTotal: 1000, disksDone: 0, disksTotal: 1 });
    expect(t.update(p('copying', 0))).toBeDefined();
    now = 100;
    expect(t.update(p('copying', 100))).toBeUndefined();
    now = 1000;
    const out = t.update(p('copying', 500));
    expect(out).toMatchObject({ rateBytesPerSec: 500, etaSeconds: 1 });
    now = 1010;
    expect(t.update(p('committing', 1000))).toMatchObject({ phase: 'committing' });
  });
});
