import { randomUUID } from 'crypto';
import type { Job, JobUser, SubmitJob } from '../jobs';
import { AppError, describeError, isAppError } from '../errors';
import type { Logger } from '../util/log';
import { BackgroundWork } from './background';
import { localTime } from './cron';
import { dueFire, nextFire, runWindow, triggerFor } from './plan';
import type { StoredPolicy, StoredRun, StoredRunVm } from './store';
import { ACTIVE_RUN, next, type ChildJob, type RunEffect, type RunEvent, type RunSnapshot } from './runMachine';
import { selectVms, type SchedulerEngine } from './selection';
import type { PolicyStore } from './store';

/** The job queue, as far as the scheduler uses it. */
export interface SchedulerQueue {
  submit(req: SubmitJob): { job: Job; joined: boolean };
  cancel(jobId: string, by: JobUser): Job;
  on(event: 'job', fn: (job: Job) => void): unknown;
  off(event: 'job', fn: (job: Job) => void): unknown;
}

/** After a run finished: apply the policy's retention to the VMs it backed up. */
export type RetentionHook = (policy: StoredPolicy, run: StoredRun, vms: StoredRunVm[]) => Promise<void>;

export interface SchedulerDeps {
  store: PolicyStore;
  jobs: { getJob(id: string): Job | undefined };
  queue: SchedulerQueue;
  engine: SchedulerEngine;
  log: Logger;
  /** Injectable for tests. */
  clock?: () => Date;
  /** Longest sleep between two looks at the policies (a clock step or a missed timer costs at
   *  most this). */
  maxSleepMs?: number;
  retention?: RetentionHook;
  /** Once per run: the check of each VM, null when the run may back it up in the policy owner's
   *  name, else why not (owner.ts). */
  authorize?: (policy: StoredPolicy) => Promise<(vmId: string) => Promise<string | null>>;
}

const SYSTEM_USER: JobUser = { id: 'olvm-backup-scheduler', name: 'the policy scheduler' };

/**
 * Runs the backup policies. At each fire time (croner, in the policy's time zone) a run is
 * recorded with its fire time (one run per fire time, see PoliciesTable.insertRun); from then
 * on the run's own state machine (runMachine.ts) decides everything, and this class only feeds
 * it events — the clock, the engine's selection, the queue's job changes — one at a time per
 * run, persists what it returns and carries out its effects. Everything is in the catalog: after
 * a restart, a run in progress resumes with the VMs not done (a job the stop interrupted is
 * submitted again) and a fire time missed while the service was down runs once, as `catch-up`.
 */
export class Scheduler {
  private readonly clock: () => Date;
  private readonly maxSleepMs: number;
  private startedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  /** Active runs as the machine last left them (read from the store once). */
  private readonly runs = new Map<string, RunSnapshot>();
  /** Events waiting for their run, and the runs being worked on (one event at a time each). */
  private readonly mailbox = new Map<string, RunEvent[]>();
  private readonly work: BackgroundWork;
  private readonly onJobListener = (job: Job): void => this.onJob(job);

  constructor(private readonly d: SchedulerDeps) {
    this.clock = d.clock ?? (() => new Date());
    this.work = new BackgroundWork(d.engine, d.log);
    this.maxSleepMs = d.maxSleepMs ?? 60_000;
  }

  /** Call after the job queue's start() and after what interrupted jobs left has been settled
   *  (a VM they started must be stopped before a retry starts it again): reconciles runs in
   *  progress with their jobs, catches up missed fire times, then keeps time. Until then, runs
   *  asked for ("run now") wait. */
  start(): void {
    if (this.stopped || this.started) return;
    this.started = true;
    this.startedAt = this.clock();
    this.d.queue.on('job', this.onJobListener);
    for (const run of this.d.store.activeRuns()) {
      for (const vm of this.d.store.runVms(run.id)) {
        if (vm.state !== 'queued' && vm.state !== 'running') continue;
        const job = vm.jobId === null ? undefined : this.d.jobs.getJob(vm.jobId);
        this.dispatch(run.id, job ? { type: 'job', vmId: vm.vmId, job: childJob(job) } : { type: 'job-missing', vmId: vm.vmId });
      }
    }
    this.tick();
  }

  /** Stops timers and submissions; waits for what is in flight. Runs stay as they are in the
   *  catalog for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.d.queue.off('job', this.onJobListener);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.work.idle();
  }

  /** A policy was created or changed: its timer may need to move. */
  policiesChanged(): void {
    if (this.started && !this.stopped) this.tick();
  }

  /** "Run now": a manual run of the policy, outside its schedule and its window. JOB_CONFLICT
   *  while another run of the policy is in progress. */
  runNow(policyId: string, by: JobUser): StoredRun {
    const policy = this.d.store.getPolicy(policyId);
    if (!policy) throw new AppError('NOT_FOUND', `policy ${policyId} not found`);
    if (this.stopped) throw new AppError('SERVICE_STOPPING', 'the backup service is stopping: try again when it is back');
    const active = this.d.store.activeRuns().find((r) => r.policyId === policyId);
    if (active) {
      throw new AppError('JOB_CONFLICT', `policy "${policy.name}" has a run in progress (${active.id}); run it again when that one has finished`, { details: { runId: active.id } });
    }
    const id = randomUUID();
    this.d.store.insertRun({ id, policy, trigger: 'manual', scheduledAt: null, missedRuns: 0, createdAt: this.clock().toISOString(), windowStart: null, windowEnd: null, requestedBy: by });
    this.d.log.info({ policy: policy.name, runId: id, user: by.name }, 'policy run started by hand');
    if (this.started) this.dispatch(id, { type: 'tick' });
    return this.d.store.getRun(id)!;
  }

  /** The watermark a new or changed policy starts from: fire times before now are not owed. */
  firedThroughNow(): string {
    return this.clock().toISOString();
  }

  /** Fires what is due, moves runs on, and sleeps until the next thing to do. */
  tick(): void {
    if (this.stopped || !this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.clock();
    // one policy that fails here must not hold the others up
    for (const p of this.d.store.listPolicies()) {
      try {
        if (p.enabled) this.fireIfDue(p, now);
      } catch (err) {
        this.d.log.error({ policy: p.name, err: describeError(err) }, 'policy scheduler step failed');
      }
    }
    for (const run of this.d.store.activeRuns()) this.dispatch(run.id, { type: 'tick' });
    this.arm(now);
  }

  /** For tests: settles when background work (selection, retention, events) started so far is done. */
  async idle(): Promise<void> {
    await this.work.idle();
  }

  private arm(now: Date): void {
    if (this.stopped) return;
    let wake = now.getTime() + this.maxSleepMs;
    for (const p of this.d.store.listPolicies()) {
      if (!p.enabled) continue;
      try {
        const next = nextFire(p, new Date(Math.max(now.getTime(), Date.parse(p.firedThrough))));
        if (next) wake = Math.min(wake, next.getTime());
      } catch {
        // reported by tick
      }
    }
    for (const s of this.runs.values()) {
      for (const t of [s.run.windowStart, s.run.windowEnd]) {
        if (t !== null && Date.parse(t) > now.getTime()) wake = Math.min(wake, Date.parse(t));
      }
    }
    // a little after the instant, so the cron library sees it as past
    this.timer = setTimeout(() => this.tick(), Math.max(50, wake - now.getTime() + 50));
    this.timer.unref();
  }

  private fireIfDue(p: StoredPolicy, now: Date): void {
    const due = dueFire(p, new Date(p.firedThrough), now);
    if (!due) return;
    const trigger = triggerFor(due.fireAt, this.startedAt ?? now);
    const scheduledAt = due.fireAt.toISOString();
    const active = this.d.store.activeRuns().find((r) => r.policyId === p.id);
    const id = randomUUID();
    if (active) {
      const message = `fire time ${localTime(due.fireAt, p.timeZone)} skipped: the previous run (${active.id}) is still in progress`;
      const at = now.toISOString();
      if (this.d.store.insertRun({ id, policy: p, trigger, scheduledAt, missedRuns: due.missed, createdAt: at, windowStart: null, windowEnd: null, requestedBy: SYSTEM_USER, state: 'skipped', message, finishedAt: at })) {
        this.d.log.warn({ policy: p.name, runId: id }, message);
        this.work.event({ severity: 'warning', description: `olvm-backup policy "${p.name}": ${message}` });
      }
      return;
    }
    // a catch-up runs now: its window is counted from now, not from the fire time it replaces
    const span = runWindow(p.window, p.timeZone, trigger === 'catch-up' ? now : due.fireAt);
    const inserted = this.d.store.insertRun({
      id,
      policy: p,
      trigger,
      scheduledAt,
      missedRuns: due.missed,
      createdAt: now.toISOString(),
      windowStart: span ? span.start.toISOString() : null,
      windowEnd: span ? span.end.toISOString() : null,
      requestedBy: SYSTEM_USER,
    });
    if (!inserted) return;
    this.d.log.info({ policy: p.name, runId: id, trigger, scheduledAt, missed: due.missed }, trigger === 'catch-up' ? 'policy run missed while the service was down: running it now (catch-up)' : 'policy run started');
    if (trigger === 'catch-up') {
      const missed = due.missed > 0 ? ` (${due.missed} earlier fire time${due.missed === 1 ? '' : 's'} also missed, not run)` : '';
      this.work.event({ severity: 'warning', description: `olvm-backup policy "${p.name}": the run due at ${localTime(due.fireAt, p.timeZone)} was missed while the backup service was down; running it now${missed}` });
    }
    this.dispatch(id, { type: 'tick' });
  }

  private onJob(job: Job): void {
    if (this.stopped) return;
    // runs of overlapping policies may share one job (the second joined the first's)
    for (const vm of this.d.store.runVmsByJob(job.id)) this.dispatch(vm.runId, { type: 'job', vmId: vm.vmId, job: childJob(job) });
  }

  /** Hands an event to its run's machine. Events of one run are taken one at a time, in order:
   *  an event an effect causes (the queue's answer to a submission) waits for the current one. */
  private dispatch(runId: string, e: RunEvent): void {
    if (this.stopped) return;
    const queued = this.mailbox.get(runId);
    if (queued) {
      queued.push(e);
      return;
    }
    const events = [e];
    this.mailbox.set(runId, events);
    try {
      for (let ev = events.shift(); ev && !this.stopped; ev = events.shift()) {
        try {
          this.step(runId, ev);
        } catch (err) {
          this.d.log.error({ runId, event: ev.type, err: describeError(err) }, 'policy run step failed');
        }
      }
    } finally {
      this.mailbox.delete(runId);
    }
  }

  private step(runId: string, e: RunEvent): void {
    const before = this.snapshot(runId);
    if (!before) return;
    const policy = this.d.store.getPolicy(before.run.policyId);
    const { run: after, effects } = next(before, e, { now: this.clock(), policy, retention: this.d.retention !== undefined });
    if (JSON.stringify([before.run, before.vms]) !== JSON.stringify([after.run, after.vms])) this.d.store.saveRun(after.run, after.vms);
    if (ACTIVE_RUN.includes(after.run.state)) this.runs.set(runId, after);
    else this.runs.delete(runId);
    for (const effect of effects) this.carryOut(after, policy, effect);
  }

  private snapshot(runId: string): RunSnapshot | undefined {
    const known = this.runs.get(runId);
    if (known) return known;
    const run = this.d.store.getRun(runId);
    if (!run || !ACTIVE_RUN.includes(run.state)) return undefined;
    const s: RunSnapshot = { run, vms: this.d.store.runVms(runId), resolving: false, finishing: false };
    this.runs.set(runId, s);
    return s;
  }

  private carryOut(s: RunSnapshot, policy: StoredPolicy | undefined, effect: RunEffect): void {
    const runId = s.run.id;
    switch (effect.type) {
      case 'resolve':
        this.resolve(s.run, policy);
        return;
      case 'submit':
        this.submit(s.run, policy, effect);
        return;
      case 'cancel-job':
        try {
          this.d.queue.cancel(effect.jobId, SYSTEM_USER);
        } catch (err) {
          this.d.log.warn({ runId, jobId: effect.jobId, err: describeError(err) }, 'could not cancel a queued job at the window end');
        }
        return;
      case 'apply-retention': {
        const hook = this.d.retention;
        if (!hook || !policy) return;
        this.work.track(
          hook(policy, s.run, effect.vms)
            .catch((err: unknown) => this.d.log.warn({ runId, err: describeError(err) }, 'retention after the policy run failed'))
            .then(() => this.dispatch(runId, { type: 'retention-done' })),
        );
        return;
      }
      case 'event':
        this.work.event({ severity: effect.severity, description: effect.description, ...(effect.vmId ? { vmId: effect.vmId } : {}) });
        return;
      case 'log':
        this.d.log[effect.level]({ runId, policy: s.run.policyName, ...effect.fields }, effect.message);
        return;
    }
  }

  /** The run's VMs through the engine, in the background. */
  private resolve(run: StoredRun, policy: StoredPolicy | undefined): void {
    this.work.track(
      (async () => {
        let e: RunEvent;
        try {
          if (!policy) throw new AppError('NOT_FOUND', 'the policy was deleted before its run started');
          const { vms, missing } = await selectVms(this.d.engine, policy.selection);
          const denied: Array<{ vmId: string; reason: string }> = [];
          const mayBackUp = await this.d.authorize?.(policy);
          for (const vm of vms) {
            const reason = mayBackUp ? await mayBackUp(vm.id) : null;
            if (reason !== null) denied.push({ vmId: vm.id, reason });
          }
          e = { type: 'resolved', vms: vms.map((v) => ({ vmId: v.id, vmName: v.name, hostId: v.hostId ?? null })), missing, denied };
        } catch (err) {
          e = { type: 'resolve-failed', message: describeError(err) };
        }
        this.dispatch(run.id, e);
      })(),
    );
  }

  private submit(run: StoredRun, policy: StoredPolicy | undefined, vm: { vmId: string; vmName: string; hostId: string | null }): void {
    let e: RunEvent;
    try {
      const { job, joined } = this.d.queue.submit({
        vmId: vm.vmId,
        vmName: vm.vmName,
        hostId: vm.hostId,
        requestedBy: { id: `policy:${run.policyId}`, name: `policy ${run.policyName}` },
        spec: {
          v: 1,
          kind: 'backup',
          forceFull: false,
          consistency: policy?.consistency ?? 'auto',
          // absent: the service's backup.method when the job runs
          ...(policy?.method ? { method: policy.method } : {}),
          lockDays: policy?.lockDays ?? 0,
          origin: { policyId: run.policyId, policyName: run.policyName, runId: run.id, trigger: run.trigger, scheduledAt: run.scheduledAt },
        },
      });
      e = { type: 'submitted', vmId: vm.vmId, job: childJob(this.d.jobs.getJob(job.id) ?? job), joined };
    } catch (err) {
      e = { type: 'submit-failed', vmId: vm.vmId, message: describeError(err), stopping: isAppError(err, 'SERVICE_STOPPING') };
    }
    this.dispatch(run.id, e);
  }
}

/** A job as a run sees it. */
function childJob(job: Job): ChildJob {
  return {
    id: job.id,
    state: job.state,
    finishedAt: job.finishedAt,
    errorMessage: job.error?.message ?? null,
    fellBack: (job.result?.disks ?? []).filter((d) => d.mode === 'full' && !EXPECTED_FULL.includes(d.reason)).map((d) => ({ disk: d.disk, reason: d.reason })),
  };
}

/** Full copies that are a disk's normal state, not a fall-back worth a warning every night: its
 *  first backup, and a disk the engine method can only copy whole (chain health shows it with
 *  its fix). */
const EXPECTED_FULL: ReadonlyArray<string> = ['first-backup', 'disk-not-incremental'];
