import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import pino from 'pino';
import type { JobResult, PolicyInput } from '../../backend/src/api/contract';
import { Catalog } from '../../backend/src/catalog';
import { jobsOf, policiesOf } from '../helpers/stores';
import type { NewEvent, Tag, Vm } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';
import { JobQueue, type JobRunContext, type JobSpec } from '../../backend/src/jobs';
import { MISSED_COUNT_CAP } from '../../backend/src/schedule/plan';
import type { FullReason, Manifest } from '../../backend/src/repository';
import { type RetentionHook, type StoredPolicy, checkCron, policyRetention, CronSchedule, dueFire, isTimeZone, localTime, runWindow, Scheduler, triggerFor, VerifyScheduler, VERIFY_SCHEDULER, windowState, type SchedulerEngine } from '../../backend/src/schedule';

const iso = (d: Date | null | undefined): string | undefined => d?.toISOString();
const at = (s: string): Date => new Date(s);
const vmId = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('schedule: cron fire times in a time zone', () => {
  test('a daily 02:30 in Europe/Berlin across both DST changes: the missing hour fires at 03:30 local, the doubled hour fires once', () => {
    const c = new CronSchedule('30 2 * * *', 'Europe/Berlin');
    // 2026-03-29: 02:00 CET → 03:00 CEST, 02:30 does not exist
    expect(c.nextRuns(3, at('2026-03-28T00:00:00Z')).map(iso)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
    expect(localTime(at('2026-03-29T01:30:00Z'), 'Europe/Berlin')).toBe('2026-03-29 03:30 GMT+2');
    // 2026-10-25: 03:00 CEST → 02:00 CET, 02:30 happens twice: one run
    const fall = c.nextRuns(3, at('2026-10-24T00:00:00Z')).map(iso);
    expect(fall).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  test('an hourly schedule in America/New_York: the hour skipped in spring is not listed twice (croner maps it onto 03:00)', () => {
    const c = new CronSchedule('0 * * * *', 'America/New_York');
    // 2026-03-08 02:00 EST → 03:00 EDT: the 02:00 hour does not exist
    const runs = c.nextRuns(4, at('2026-03-08T05:30:00Z')).map((d) => localTime(d, 'America/New_York'));
    expect(runs).toEqual(['2026-03-08 01:00 EST', '2026-03-08 03:00 EDT', '2026-03-08 04:00 EDT', '2026-03-08 05:00 EDT']);
    // fall back: 01:00 happens twice in wall-clock time; each real hour fires once
    const fall = c.nextRuns(4, at('2026-11-01T04:30:00Z')).map((d) => d.toISOString());
    expect(new Set(fall).size).toBe(4);
  });

  test('latestAtOrBefore includes the instant itself', () => {
    const c = new CronSchedule('0 3 * * *', 'UTC');
    expect(iso(c.latestAtOrBefore(at('2026-03-30T03:00:00Z')))).toBe('2026-03-30T03:00:00.000Z');
    expect(iso(c.latestAtOrBefore(at('2026-03-30T02:59:59Z')))).toBe('2026-03-29T03:00:00.000Z');
  });

  test('cron and time zone checks say what is wrong', () => {
    expect(checkCron('*/15 1-5 * * mon-fri')).toBeUndefined();
    expect(checkCron('* * * * * *')).toMatch(/5-field/);
    expect(checkCron('61 * * * *')).toMatch(/minute/);
    expect(checkCron('every day')).toMatch(/5-field/);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });
});

describe('schedule: the catch-up decision', () => {
  const p = { schedule: '0 3 * * *', timeZone: 'UTC' };

  test('nothing is due when the watermark is at or after the latest fire time', () => {
    expect(dueFire(p, at('2026-03-30T03:00:00Z'), at('2026-03-30T10:00:00Z'))).toBeNull();
    expect(dueFire(p, at('2026-03-30T04:00:00Z'), at('2026-03-31T02:59:00Z'))).toBeNull();
  });

  test('a fire time passed since the watermark is due, exactly at its instant', () => {
    const d = dueFire(p, at('2026-03-29T03:00:00Z'), at('2026-03-30T03:00:00Z'));
    expect(d && { fireAt: iso(d.fireAt), missed: d.missed }).toEqual({ fireAt: '2026-03-30T03:00:00.000Z', missed: 0 });
  });

  test('several missed fire times give one run (the latest) and the count of the others', () => {
    const d = dueFire(p, at('2026-03-20T12:00:00Z'), at('2026-03-30T10:00:00Z'));
    expect(d && { fireAt: iso(d.fireAt), missed: d.missed }).toEqual({ fireAt: '2026-03-30T03:00:00.000Z', missed: 9 });
    const minutely = dueFire({ schedule: '* * * * *', timeZone: 'UTC' }, at('2020-01-01T00:00:00Z'), at('2026-03-30T10:00:30Z'));
    expect(iso(minutely?.fireAt)).toBe('2026-03-30T10:00:00.000Z');
    expect(minutely?.missed).toBe(MISSED_COUNT_CAP); // counted up to a cap
  });

  test('a fire time from before the scheduler started is a catch-up', () => {
    expect(triggerFor(at('2026-03-30T03:00:00Z'), at('2026-03-30T09:00:00Z'))).toBe('catch-up');
    expect(triggerFor(at('2026-03-30T03:00:00Z'), at('2026-03-30T02:00:00Z'))).toBe('schedule');
  });
});

describe('schedule: backup windows', () => {
  test('without a start the window opens at the fire time', () => {
    const w = runWindow({ durationMinutes: 90 }, 'UTC', at('2026-03-30T22:00:00Z'));
    expect([iso(w?.start), iso(w?.end)]).toEqual(['2026-03-30T22:00:00.000Z', '2026-03-30T23:30:00.000Z']);
    expect(runWindow(null, 'UTC', at('2026-03-30T22:00:00Z'))).toBeNull();
  });

  test('a daily window 22:00–06:00 local: a fire inside uses that window, one before waits for the next', () => {
    const win = { startMinutes: 22 * 60, durationMinutes: 8 * 60 };
    const inside = runWindow(win, 'Europe/Berlin', at('2026-07-01T01:00:00Z')); // 03:00 CEST, window opened 22:00 CEST the day before
    expect([iso(inside?.start), iso(inside?.end)]).toEqual(['2026-06-30T20:00:00.000Z', '2026-07-01T04:00:00.000Z']);
    const before = runWindow(win, 'Europe/Berlin', at('2026-07-01T10:00:00Z')); // noon: wait for 22:00
    expect([iso(before?.start), iso(before?.end)]).toEqual(['2026-07-01T20:00:00.000Z', '2026-07-02T04:00:00.000Z']);
    // winter: 22:00 CET is 21:00 UTC
    const winter = runWindow(win, 'Europe/Berlin', at('2026-12-01T22:30:00Z'));
    expect(iso(winter?.start)).toBe('2026-12-01T21:00:00.000Z');
  });

  test('window states: wait before, open inside, closed at the end', () => {
    const span = { start: '2026-03-30T22:00:00.000Z', end: '2026-03-30T23:00:00.000Z' };
    expect(windowState(span, at('2026-03-30T21:59:59Z'))).toBe('wait');
    expect(windowState(span, at('2026-03-30T22:30:00Z'))).toBe('open');
    expect(windowState(span, at('2026-03-30T23:00:00Z'))).toBe('closed');
    expect(windowState({ start: null, end: null }, at('2030-01-01T00:00:00Z'))).toBe('open');
  });
});

/** A runner finished by hand (the backups), on the real queue and a real SQLite catalog. */
class ManualRunner {
  readonly started: string[] = [];
  private readonly pending = new Map<string, { resolve: (r: JobResult) => void; reject: (e: unknown) => void }>();
  run = (ctx: JobRunContext): Promise<JobResult> =>
    new Promise<JobResult>((resolve, reject) => {
      this.started.push(ctx.job.vmId);
      this.pending.set(ctx.job.vmId, { resolve, reject });
      ctx.signal.addEventListener('abort', () => setTimeout(() => reject(ctx.signal.reason), 1));
    });
  running(): string[] {
    return [...this.pending.keys()];
  }
  /** Ends the job of `vm` with this result, or fails it with `error`. */
  settle(vm: string, outcome: JobResult | Error): void {
    const p = this.pending.get(vm);
    if (!p) throw new Error(`no running job for ${vm}`);
    this.pending.delete(vm);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
  }
  /** `full`: the disk copied whole, for `bitmap-missing` or the reason given. */
  finish(vm: string, full: boolean | FullReason = false): void {
    const p = this.pending.get(vm);
    if (!p) throw new Error(`no running job for ${vm}`);
    this.pending.delete(vm);
    const reason = full === false ? 'incremental' : full === true ? 'bitmap-missing' : full;
    p.resolve({ pointId: `p-${vm}`, bytesRead: 1, bytesStored: 1, durationMs: 1, disks: [{ disk: 'd1', mode: full === false ? 'incremental' : 'full', reason }], warnings: [] });
  }
}

class FakeEngine implements SchedulerEngine {
  readonly events: NewEvent[] = [];
  vms: Array<{ id: string; name: string; tags: string[] }> = [1, 2, 3, 4].map((n) => ({ id: vmId(n), name: `vm0${n}`, tags: n <= 3 ? ['nightly'] : [] }));
  private vm(v: { id: string; name: string }): Vm {
    return { id: v.id, name: v.name, hostId: undefined } as Vm;
  }
  findVms(): Promise<Vm[]> {
    return Promise.resolve(this.vms.map((v) => this.vm(v)));
  }
  findVmsByTag(tag: string): Promise<Vm[]> {
    return Promise.resolve(this.vms.filter((v) => v.tags.includes(tag)).map((v) => this.vm(v)));
  }
  findTagByName(name: string): Promise<Tag | undefined> {
    return Promise.resolve(this.vms.some((v) => v.tags.includes(name)) ? ({ id: 't', name } as Tag) : undefined);
  }
  getVm(id: string): Promise<Vm> {
    const v = this.vms.find((x) => x.id === id);
    return v ? Promise.resolve(this.vm(v)) : Promise.reject(new AppError('ENGINE_NOT_FOUND', 'no vm'));
  }
  addEvent(ev: NewEvent): Promise<unknown> {
    this.events.push(ev);
    return Promise.resolve({});
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

describe('schedule: the scheduler on a real catalog and job queue (injectable clock)', () => {
  let dir: string;
  let catalog: Catalog;
  let runner: ManualRunner;
  let queue: JobQueue;
  let engine: FakeEngine;
  let now: Date;
  const scheds: Array<{ stop(): unknown }> = [];
  const log = pino({ level: 'silent' });

  const policy = (over: Partial<PolicyInput> & { firedThrough?: string; verifyFiredThrough?: string } = {}): StoredPolicy => {
    const p: StoredPolicy = {
      id: vmId(900 + scheds.length + Math.floor(Math.random() * 1000)),
      name: `p${Math.random()}`,
      schedule: '0 3 * * *',
      timeZone: 'UTC',
      selection: { tag: 'nightly' },
      retention: { keepLast: 7, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
      lockDays: 0,
      concurrency: 2,
      window: null,
      enabled: true,
      createdAt: '2026-03-01T00:00:00.000Z',
      updatedAt: '2026-03-01T00:00:00.000Z',
      updatedBy: { id: 'u', name: 'admin' },
      owner: { id: 'u', name: 'admin', groupIds: [], groupNames: [] },
      firedThrough: '2026-03-30T03:00:00.000Z',
      verifyFiredThrough: '2026-03-30T03:00:00.000Z',
      ...over,
    };
    policiesOf(catalog).insertPolicy(p);
    return p;
  };

  const newScheduler = (retention?: RetentionHook): Scheduler => {
    const s = new Scheduler({ store: policiesOf(catalog), jobs: jobsOf(catalog), queue, engine, log, clock: () => now, maxSleepMs: 3_600_000, ...(retention ? { retention } : {}) });
    scheds.push(s);
    return s;
  };

  const newQueue = (): JobQueue => {
    runner = new ManualRunner();
    return new JobQueue({ store: jobsOf(catalog), runner: runner.run, limits: { global: 10, perHost: 10 } });
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-sched-'));
    catalog = Catalog.open(path.join(dir, 'catalog.db'));
    queue = newQueue();
    queue.start();
    engine = new FakeEngine();
    now = at('2026-03-30T12:00:00Z');
  });

  afterEach(async () => {
    for (const s of scheds.splice(0)) await s.stop();
    await queue.stop(1000);
    catalog.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a fire time selects the tagged vms and runs them at most `concurrency` at a time; the run ends when all did', async () => {
    const p = policy({ concurrency: 2 });
    const s = newScheduler();
    s.start();
    expect(policiesOf(catalog).runsOf(p.id, 5)).toEqual([]); // nothing due at noon
    now = at('2026-03-31T03:00:00.500Z');
    s.tick();
    await s.idle();
    const [run] = policiesOf(catalog).runsOf(p.id, 5);
    expect(run).toMatchObject({ trigger: 'schedule', scheduledAt: '2026-03-31T03:00:00.000Z', state: 'running' });
    expect(runner.running()).toEqual([vmId(1), vmId(2)]);
    runner.finish(vmId(1), true);
    await settle();
    expect(runner.running()).toEqual([vmId(2), vmId(3)]);
    // the job carries the run in its spec
    const vms = policiesOf(catalog).runVms(run!.id);
    expect(jobsOf(catalog).jobSpec(vms[0]!.jobId!)).toMatchObject({ kind: 'backup', origin: { runId: run!.id, policyId: p.id } });
    // a raw disk under the engine method is copied whole every time: expected, not a fall-back
    runner.finish(vmId(2), 'disk-not-incremental');
    runner.finish(vmId(3));
    await settle();
    await s.idle();
    expect(policiesOf(catalog).getRun(run!.id)).toMatchObject({ state: 'succeeded', message: expect.stringContaining('3 succeeded') });
    expect(policiesOf(catalog).getRun(run!.id)?.message).toContain('1 fell back to a full backup');
    expect(policiesOf(catalog).runVms(run!.id).map((v) => [v.vmName, v.state, v.fellBackToFull])).toEqual([
      ['vm01', 'succeeded', true],
      ['vm02', 'succeeded', false],
      ['vm03', 'succeeded', false],
    ]);
    expect(engine.events.map((e) => e.severity)).toEqual(['warning', 'normal']); // vm01 fell back to a full; the run's summary
    expect(engine.events[0]).toMatchObject({ vmId: vmId(1), description: expect.stringContaining('fell back to a full backup (d1: bitmap-missing)') });
    // the same fire time never runs again
    s.tick();
    expect(policiesOf(catalog).runsOf(p.id, 5)).toHaveLength(1);
  });

  test('a fire time missed while the service was down runs once at start-up, marked catch-up, with the count of the others', async () => {
    const p = policy({ schedule: '* * * * *', firedThrough: '2020-01-01T00:00:00.000Z', concurrency: 5 });
    now = at('2026-03-30T12:00:30Z');
    const s = newScheduler();
    s.start();
    await s.idle();
    const runs = policiesOf(catalog).runsOf(p.id, 5);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: 'catch-up', scheduledAt: '2026-03-30T12:00:00.000Z', missedRuns: MISSED_COUNT_CAP });
    expect(engine.events[0]).toMatchObject({ severity: 'warning', description: expect.stringContaining('missed while the backup service was down') });
    // a second scheduler on the same catalog (a restart) does not run it again
    await s.stop();
    const again = newScheduler();
    again.start();
    await again.idle();
    expect(policiesOf(catalog).runsOf(p.id, 5)).toHaveLength(1);
    // the next minute is a regular run, skipped while the catch-up is still in progress
    now = at('2026-03-30T12:01:00.100Z');
    again.tick();
    const next = policiesOf(catalog).runsOf(p.id, 5);
    expect(next[0]).toMatchObject({ trigger: 'schedule', state: 'skipped', message: expect.stringContaining('still in progress') });
  });

  test('window cut-off: children not started by the window end are skipped (a queued job is cancelled), the run is partial', async () => {
    const p = policy({ concurrency: 1, window: { durationMinutes: 60 } });
    const s = newScheduler();
    s.start();
    now = at('2026-03-31T03:00:01Z');
    s.tick();
    await s.idle();
    const [run] = policiesOf(catalog).runsOf(p.id, 1);
    expect(run?.windowEnd).toBe('2026-03-31T04:00:00.000Z');
    runner.finish(vmId(1));
    await settle();
    expect(runner.running()).toEqual([vmId(2)]);
    now = at('2026-03-31T04:00:00Z');
    s.tick();
    await s.idle();
    // vm02 was running: it goes on; vm03 never started: skipped
    expect(policiesOf(catalog).runVms(run!.id).map((v) => [v.vmName, v.state])).toEqual([
      ['vm01', 'succeeded'],
      ['vm02', 'running'],
      ['vm03', 'skipped'],
    ]);
    expect(policiesOf(catalog).runVms(run!.id)[2]!.reason).toMatch(/backup window closed at 2026-03-31 04:00 UTC/);
    runner.finish(vmId(2));
    await settle();
    await s.idle();
    expect(policiesOf(catalog).getRun(run!.id)).toMatchObject({ state: 'partial', message: '2 succeeded, 0 failed, 1 skipped' });
    const warnings = engine.events.filter((e) => e.severity === 'warning').map((e) => e.description);
    expect(warnings.some((w) => /vm vm03 was skipped/.test(w))).toBe(true);
  });

  test('a queued child at the window end is cancelled and skipped', async () => {
    await queue.stop(100);
    queue = new JobQueue({ store: jobsOf(catalog), runner: (runner = new ManualRunner()).run, limits: { global: 1, perHost: 1 } });
    queue.start();
    const p = policy({ concurrency: 3, window: { durationMinutes: 30 } });
    const s = newScheduler();
    s.start();
    now = at('2026-03-31T03:00:01Z');
    s.tick();
    await s.idle();
    const [run] = policiesOf(catalog).runsOf(p.id, 1);
    expect(policiesOf(catalog).runVms(run!.id).map((v) => v.state)).toEqual(['running', 'queued', 'queued']);
    now = at('2026-03-31T03:30:00Z');
    s.tick();
    const after = policiesOf(catalog).runVms(run!.id);
    expect(after.map((v) => v.state)).toEqual(['running', 'skipped', 'skipped']);
    expect(jobsOf(catalog).getJob(after[1]!.jobId!)?.state).toBe('cancelled');
  });

  test('a restart in the middle of a run: finished vms are not repeated, the interrupted one and the rest run', async () => {
    const p = policy({ concurrency: 1 });
    const s = newScheduler();
    s.start();
    now = at('2026-03-31T03:00:01Z');
    s.tick();
    await s.idle();
    const [run] = policiesOf(catalog).runsOf(p.id, 1);
    runner.finish(vmId(1));
    await settle();
    expect(runner.running()).toEqual([vmId(2)]);
    // the service stops: scheduler first, then the queue (main.ts's order)
    await s.stop();
    await queue.stop(1000);
    await settle();
    queue = newQueue();
    queue.start(); // marks nothing: stop() already marked vm02's job interrupted
    const s2 = newScheduler();
    s2.start();
    await s2.idle();
    await settle();
    expect(runner.started).toEqual([vmId(2)]); // vm01 not again
    runner.finish(vmId(2));
    await settle();
    expect(runner.running()).toEqual([vmId(3)]);
    runner.finish(vmId(3));
    await settle();
    const vms = policiesOf(catalog).runVms(run!.id);
    expect(vms.map((v) => [v.vmName, v.state, v.attempts])).toEqual([
      ['vm01', 'succeeded', 1],
      ['vm02', 'succeeded', 2],
      ['vm03', 'succeeded', 1],
    ]);
    expect(policiesOf(catalog).getRun(run!.id)?.state).toBe('succeeded');
  });

  test('run now: a manual run outside the schedule; a second one while it runs is refused', async () => {
    const p = policy({ selection: { vmIds: [vmId(4), vmId(77)] } });
    const s = newScheduler();
    s.start();
    const run = s.runNow(p.id, { id: 'u', name: 'admin' });
    expect(run).toMatchObject({ trigger: 'manual', scheduledAt: null });
    expect(() => s.runNow(p.id, { id: 'u', name: 'admin' })).toThrow(/run in progress/);
    await s.idle();
    expect(policiesOf(catalog).runVms(run.id).map((v) => [v.vmId, v.state])).toEqual([
      [vmId(4), 'running'],
      [vmId(77), 'skipped'],
    ]);
    runner.finish(vmId(4));
    await settle();
    expect(policiesOf(catalog).getRun(run.id)?.state).toBe('partial');
  });

  test("a policy's consistency reaches its backup jobs: crash when it opts out of freezing, auto by default", async () => {
    const crash = policy({ name: 'no-freeze', consistency: 'crash', selection: { vmIds: [vmId(3)] } });
    const plain = policy({ name: 'freeze', selection: { vmIds: [vmId(4)] } });
    expect(policiesOf(catalog).getPolicy(crash.id)?.consistency).toBe('crash');
    const s = newScheduler();
    s.start();
    const a = s.runNow(crash.id, { id: 'u', name: 'admin' });
    const b = s.runNow(plain.id, { id: 'u', name: 'admin' });
    await s.idle();
    const jobOf = (runId: string): string => policiesOf(catalog).runVms(runId)[0]!.jobId!;
    expect(jobsOf(catalog).jobSpec(jobOf(a.id))).toMatchObject({ consistency: 'crash' });
    expect(jobsOf(catalog).jobSpec(jobOf(b.id))).toMatchObject({ consistency: 'auto' });
    runner.finish(vmId(3));
    runner.finish(vmId(4));
    await settle();
  });

  test('runs of overlapping policies share one pending backup of a vm, and both settle when it ends', async () => {
    const a = policy({ selection: { vmIds: [vmId(1)] } });
    const b = policy({ selection: { vmIds: [vmId(1)] } });
    const s = newScheduler();
    s.start();
    const ra = s.runNow(a.id, { id: 'u', name: 'admin' });
    await s.idle();
    const rb = s.runNow(b.id, { id: 'u', name: 'admin' });
    await s.idle();
    expect(runner.started).toEqual([vmId(1)]);
    expect(policiesOf(catalog).runVms(rb.id)[0]).toMatchObject({ joined: true, jobId: policiesOf(catalog).runVms(ra.id)[0]!.jobId });
    runner.finish(vmId(1));
    await settle();
    expect([policiesOf(catalog).getRun(ra.id)?.state, policiesOf(catalog).getRun(rb.id)?.state]).toEqual(['succeeded', 'succeeded']);
  });

  test("a run that joins another's backup gets its policy's lock: a queued job takes the longer lock, a running one's point is lengthened after the run", async () => {
    const locks: Array<{ pointId: string; until: string; actor: string }> = [];
    const repository = {
      extendLock: (pointId: string, until: Date, o: { actor: string }) => {
        locks.push({ pointId, until: until.toISOString(), actor: o.actor });
        return Promise.resolve({ pointId } as Manifest);
      },
      prune: () => Promise.resolve({ removed: [], locked: [], leased: [] }),
    };
    const hook = policyRetention({ repository, jobs: jobsOf(catalog), points: { indexPoint: () => undefined, removePoint: () => false }, log, clock: () => now });
    // running: the short-lock policy's job has started when the long-lock policy joins it
    const short = policy({ name: 'short', lockDays: 0, selection: { vmIds: [vmId(1)] } });
    const long = policy({ name: 'long', lockDays: 30, selection: { vmIds: [vmId(1)] } });
    const s = newScheduler(hook);
    s.start();
    s.runNow(short.id, { id: 'u', name: 'admin' });
    await s.idle();
    const rl = s.runNow(long.id, { id: 'u', name: 'admin' });
    await s.idle();
    const jobId = policiesOf(catalog).runVms(rl.id)[0]!.jobId!;
    expect(policiesOf(catalog).runVms(rl.id)[0]).toMatchObject({ joined: true });
    expect(jobsOf(catalog).jobSpec(jobId)).toMatchObject({ lockDays: 0 }); // a running job's spec is read already
    runner.finish(vmId(1));
    await settle();
    await s.idle();
    const finishedAt = Date.parse(jobsOf(catalog).getJob(jobId)!.finishedAt!);
    expect(locks).toEqual([{ pointId: `p-${vmId(1)}`, until: new Date(finishedAt + 30 * 86_400_000).toISOString(), actor: 'policy long' }]);

    // queued: another vm holds the only slot, so the short-lock job waits; the joiner raises it
    locks.length = 0;
    await queue.stop(100);
    queue = new JobQueue({ store: jobsOf(catalog), runner: (runner = new ManualRunner()).run, limits: { global: 1, perHost: 1 } });
    queue.start();
    queue.submit({ vmId: vmId(4), vmName: 'vm04', hostId: null, requestedBy: { id: 'u', name: 'admin' }, spec: { v: 1, kind: 'backup', forceFull: false, consistency: 'auto', lockDays: 0, origin: null } });
    const s2 = newScheduler(hook);
    s2.start();
    s2.runNow(short.id, { id: 'u', name: 'admin' });
    await s2.idle();
    const rl2 = s2.runNow(long.id, { id: 'u', name: 'admin' });
    await s2.idle();
    const queued = policiesOf(catalog).runVms(rl2.id)[0]!;
    expect(queued).toMatchObject({ joined: true, state: 'queued' });
    expect(jobsOf(catalog).jobSpec(queued.jobId!)).toMatchObject({ lockDays: 30 });
    expect(jobsOf(catalog).jobLog(queued.jobId!).map((l) => l.message)).toContain('retention lock raised from 0 to 30 days: policy long joined this backup');
    runner.finish(vmId(4));
    await settle();
    runner.finish(vmId(1));
    await settle();
    await s2.idle();
    expect(locks).toEqual([]); // committed with the policy's lock already
  });

  test('a tag that disappeared fails the run with an error event', async () => {
    const p = policy({ selection: { tag: 'gone' } });
    const s = newScheduler();
    s.start();
    const run = s.runNow(p.id, { id: 'u', name: 'admin' });
    await s.idle();
    expect(policiesOf(catalog).getRun(run.id)).toMatchObject({ state: 'failed', message: expect.stringContaining('no tag "gone"') });
    expect(engine.events.at(-1)?.severity).toBe('error');
  });

  const newVerifyScheduler = (): VerifyScheduler => {
    const v = new VerifyScheduler({
      store: policiesOf(catalog),
      queue,
      verifyPending: (id) => jobsOf(catalog).listJobs({ vmIds: [id], states: ['queued', 'running'], limit: 100 }).jobs.some((j) => j.kind === 'verify'),
      engine,
      log,
      clock: () => now,
      maxSleepMs: 3_600_000,
    });
    scheds.push(v);
    return v;
  };
  const verified = (points: number, damaged: string[]): JobResult => ({ pointId: '', bytesRead: 0, bytesStored: 0, durationMs: 1, disks: [], warnings: [], verified: { points, damaged, quarantined: 0, cleared: [] } });
  const verifyJobs = (): Array<{ vmId: string; state: string; spec: JobSpec }> =>
    jobsOf(catalog)
      .listJobs({ limit: 100 })
      .jobs.filter((j) => j.kind === 'verify')
      .map((j) => ({ vmId: j.vmId, state: j.state, spec: jobsOf(catalog).jobSpec(j.id) }))
      .sort((a, b) => a.vmId.localeCompare(b.vmId));

  test('a verify schedule: one verify job per selected vm at each fire time, never doubled while one is pending; outcomes as engine events', async () => {
    // Sundays 04:00 UTC; the backup schedule is not running here
    const p = policy({ verifySchedule: '0 4 * * 0' });
    const v = newVerifyScheduler();
    v.start();
    await v.idle();
    expect(verifyJobs()).toEqual([]); // Monday noon: nothing due
    now = at('2026-04-05T04:00:00.500Z');
    v.tick();
    await v.idle();
    await settle();
    expect(verifyJobs()).toEqual(
      [1, 2, 3].map((n) => ({
        vmId: vmId(n),
        state: 'running',
        spec: { v: 1, kind: 'verify', target: { vmKey: vmId(n) }, origin: { policyId: p.id, policyName: p.name, runId: null, scheduledAt: '2026-04-05T04:00:00.000Z', trigger: 'schedule' } },
      })),
    );
    expect(jobsOf(catalog).listJobs({ limit: 100 }).jobs.every((j) => j.requestedBy.id === VERIFY_SCHEDULER.id)).toBe(true);
    expect(policiesOf(catalog).getPolicy(p.id)?.verifyFiredThrough).toBe('2026-04-05T04:00:00.000Z');
    // the same fire time never runs again; the next one finds every vm's verify still running
    v.tick();
    now = at('2026-04-12T04:00:00.500Z');
    v.tick();
    await v.idle();
    expect(verifyJobs()).toHaveLength(3);
    expect(policiesOf(catalog).getPolicy(p.id)?.verifyFiredThrough).toBe('2026-04-12T04:00:00.000Z');

    runner.settle(vmId(1), verified(4, []));
    runner.settle(vmId(2), verified(4, ['pt-a']));
    runner.settle(vmId(3), new Error('repository unreadable'));
    await settle();
    await v.idle();
    expect(engine.events.map((e) => [e.severity, e.vmId, e.description])).toEqual([
      ['normal', vmId(1), `olvm-backup policy "${p.name}": scheduled verify of vm vm01: 4 restore point(s) checked, every chunk whole`],
      ['error', vmId(2), `olvm-backup policy "${p.name}": scheduled verify of vm vm02: 1 of 4 restore point(s) damaged (pt-a); the next backup stores fresh data for them`],
      ['error', vmId(3), expect.stringMatching(/scheduled verify of vm vm03 failed: .*repository unreadable/)],
    ]);
  });

  test('a verify missed while the service was down runs once at start-up (a warning event); a restart does not repeat it; a disabled policy or one without a verify schedule never verifies', async () => {
    const p = policy({ verifySchedule: '30 4 * * *', verifyFiredThrough: '2026-01-01T00:00:00.000Z' });
    policy({ verifySchedule: '30 4 * * *', verifyFiredThrough: '2026-01-01T00:00:00.000Z', enabled: false, selection: { vmIds: [vmId(4)] } });
    policy({ verifyFiredThrough: '2026-01-01T00:00:00.000Z', selection: { vmIds: [vmId(4)] } });
    const v = newVerifyScheduler();
    v.start();
    await v.idle();
    expect(verifyJobs().map((j) => [j.vmId, j.spec.kind === 'verify' && j.spec.origin?.trigger, j.spec.kind === 'verify' && j.spec.origin?.scheduledAt])).toEqual([1, 2, 3].map((n) => [vmId(n), 'catch-up', '2026-03-30T04:30:00.000Z']));
    expect(engine.events).toEqual([{ severity: 'warning', description: expect.stringContaining(`policy "${p.name}": the verify due at 2026-03-30 04:30 UTC was missed while the backup service was down (and `) }]);
    await v.stop();
    for (const n of [1, 2, 3]) runner.settle(vmId(n), verified(1, []));
    await settle();
    const again = newVerifyScheduler();
    again.start();
    await again.idle();
    expect(verifyJobs()).toHaveLength(3);
  });
});
