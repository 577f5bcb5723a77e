import { randomUUID } from 'crypto';
import type { Job, JobUser } from '../jobs';
import type { PolicyInput, PolicyRunVmState } from './model';
import type { PoliciesTable, StoredPolicy, StoredRun, StoredRunVm } from './policiesTable';
import type { NewEvent, Tag, Vm } from '../engine';
import { AppError, describeError, isAppError } from '../errors';
import type { Logger } from '../util/log';
import { localTime } from './cron';
import { dueFire, freeSlots, nextFire, runWindow, triggerFor, windowState } from './plan';
import { BackgroundWork } from './background';

/** What the scheduler asks of the engine, as the service account (never a portal user). */
export interface SchedulerEngine {
  findVms(search: string): Promise<Vm[]>;
  findVmsByTag(tag: string): Promise<Vm[]>;
  findTagByName(name: string): Promise<Tag | undefined>;
  getVm(id: string): Promise<Vm>;
  addEvent(ev: NewEvent): Promise<unknown>;
}

/** A backup the scheduler asks the queue for (jobs/types.ts SubmitJob's backup part). */
export interface PolicyJobRequest {
  vmId: string;
  vmName: string;
  hostId: string | null;
  requestedBy: JobUser;
  forceFull: boolean;
  /** Stored with the job: the policy run it belongs to. */
  meta?: Record<string, unknown>;
}

/** The job queue, as far as the scheduler uses it. */
export interface SchedulerQueue {
  submit(req: PolicyJobRequest): { job: Job; joined: boolean };
  cancel(jobId: string, by: JobUser): Job;
  on(event: 'job', fn: (job: Job) => void): unknown;
  off(event: 'job', fn: (job: Job) => void): unknown;
}

/** After a run finished: apply the policy's retention to the VMs it backed up. */
export type RetentionHook = (policy: StoredPolicy, run: StoredRun, vms: StoredRunVm[]) => Promise<void>;

export interface SchedulerDeps {
  store: PoliciesTable;
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
}

/** A child job interrupted by a stop of the service is submitted again, this many times in all. */
const MAX_ATTEMPTS = 3;
const TERMINAL_VM: readonly PolicyRunVmState[] = ['succeeded', 'failed', 'skipped', 'cancelled'];
const SYSTEM_USER: JobUser = { id: 'olvm-backup-scheduler', name: 'the policy scheduler' };

/**
 * Runs the backup policies: at each fire time (croner, in the policy's time zone) a run is
 * recorded with its fire time (one run per fire time, see PoliciesTable.insertRun), its VMs are
 * resolved through the engine, and one backup job per VM goes to the job queue, at most the
 * policy's concurrency at a time, only inside its window. Everything the scheduler knows is in
 * the catalog: after a restart, a run in progress resumes with the VMs not done (a job the stop
 * interrupted is submitted again) and a fire time missed while the service was down runs once,
 * marked `catch-up`.
 */
export class Scheduler {
  private readonly clock: () => Date;
  private readonly maxSleepMs: number;
  private startedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly resolving = new Set<string>();
  private readonly advancing = new Set<string>();
  private readonly again = new Set<string>();
  /** Runs whose retention is being applied before they are marked finished. */
  private readonly finishing = new Set<string>();
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
        if ((vm.state === 'queued' || vm.state === 'running') && vm.jobId) {
          const job = this.d.jobs.getJob(vm.jobId);
          if (!job) this.d.store.updateRunVm(run.id, vm.vmId, { state: 'pending', jobId: null });
          else this.applyJob(vm, job);
        }
      }
    }
    this.tick();
  }

  /** Stops timers and submissions; waits for engine events in flight. Runs stay as they are
   *  in the catalog for the next start. */
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
    this.resolve(id);
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
    // one policy or run that fails here must not hold the others up
    for (const p of this.d.store.listPolicies()) {
      try {
        if (p.enabled) this.fireIfDue(p, now);
      } catch (err) {
        this.d.log.error({ policy: p.name, err: describeError(err) }, 'policy scheduler step failed');
      }
    }
    for (const run of this.d.store.activeRuns()) {
      try {
        if (run.state === 'resolving') this.resolve(run.id);
        else this.advance(run.id);
      } catch (err) {
        this.d.log.error({ runId: run.id, err: describeError(err) }, 'policy run step failed');
      }
    }
    this.arm(now);
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
    for (const r of this.d.store.activeRuns()) {
      for (const t of [r.windowStart, r.windowEnd]) {
        if (t !== null && Date.parse(t) > now.getTime()) wake = Math.min(wake, Date.parse(t));
      }
    }
    // a little after the instant, so the cron library sees it as past
    const delay = Math.max(50, wake - now.getTime() + 50);
    this.timer = setTimeout(() => this.tick(), delay);
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
    this.resolve(id);
  }

  /** Resolves a run's VMs through the engine (in the background), then starts its children. */
  private resolve(runId: string): void {
    if (this.resolving.has(runId) || this.stopped) return;
    this.resolving.add(runId);
    const work = (async () => {
      const run = this.d.store.getRun(runId);
      if (!run || run.state !== 'resolving') return;
      const policy = this.d.store.getPolicy(run.policyId);
      try {
        if (!policy) throw new AppError('NOT_FOUND', 'the policy was deleted before its run started');
        const { vms, missing } = await selectVms(this.d.engine, policy.selection);
        if (this.stopped) return;
        this.d.store.setRunVms(runId, [...vms.map((v) => ({ vmId: v.id, vmName: v.name, hostId: v.hostId ?? null })), ...missing.map((id) => ({ vmId: id, vmName: id, hostId: null }))]);
        for (const id of missing) this.settleVm(policy, runId, id, id, 'skipped', 'the vm does not exist in the engine (any more)', false);
        this.d.log.info({ policy: policy.name, runId, vms: vms.map((v) => v.name) }, 'policy run selected its vms');
      } catch (err) {
        if (this.stopped) return;
        const message = `selecting the vms failed: ${describeError(err)}`;
        this.d.store.finishRun(runId, 'failed', this.clock().toISOString(), message);
        this.d.log.error({ runId, policy: run.policyName }, message);
        this.work.event({ severity: 'error', description: `olvm-backup policy "${run.policyName}": ${message}` });
        return;
      }
      this.advance(runId);
    })()
      .catch((err: unknown) => this.d.log.error({ runId, err: describeError(err) }, 'policy run failed to start'))
      .finally(() => this.resolving.delete(runId));
    this.work.track(work);
  }

  /** Moves a run on: window, cap, submissions, the end. Synchronous (no await): the queue's
   *  events about its children come in between, never in the middle. */
  advance(runId: string): void {
    if (this.stopped || !this.started) return;
    if (this.advancing.has(runId)) {
      this.again.add(runId);
      return;
    }
    this.advancing.add(runId);
    try {
      do {
        this.again.delete(runId);
        this.advanceOnce(runId);
      } while (this.again.has(runId));
    } finally {
      this.advancing.delete(runId);
    }
  }

  private advanceOnce(runId: string): void {
    const run = this.d.store.getRun(runId);
    if (!run || run.state !== 'running') return;
    const policy = this.d.store.getPolicy(run.policyId);
    const now = this.clock();
    const vms = this.d.store.runVms(runId);
    const ws = windowState({ start: run.windowStart, end: run.windowEnd }, now);
    if (ws === 'closed') {
      const closed = `not started before the backup window closed at ${localTime(new Date(run.windowEnd!), policy?.timeZone ?? 'UTC')}; the next run takes it`;
      for (const vm of vms) {
        if (vm.state === 'pending') {
          this.settleVm(policy, runId, vm.vmId, vm.vmName, 'skipped', closed);
        } else if (vm.state === 'queued' && vm.jobId && !vm.joined && this.d.jobs.getJob(vm.jobId)?.state === 'queued') {
          this.settleVm(policy, runId, vm.vmId, vm.vmName, 'skipped', closed);
          try {
            this.d.queue.cancel(vm.jobId, SYSTEM_USER);
          } catch (err) {
            this.d.log.warn({ runId, jobId: vm.jobId, err: describeError(err) }, 'could not cancel a queued job at the window end');
          }
        }
      }
    } else if (ws === 'open') {
      let slots = freeSlots(run.concurrency, vms.filter((v) => v.state === 'queued' || v.state === 'running').length);
      for (const vm of vms) {
        if (slots <= 0) break;
        if (vm.state !== 'pending') continue;
        try {
          const { job, joined } = this.d.queue.submit({
            vmId: vm.vmId,
            vmName: vm.vmName,
            hostId: vm.hostId,
            requestedBy: { id: `policy:${run.policyId}`, name: `policy ${run.policyName}` },
            forceFull: false,
            meta: { policyRunId: runId, policyId: run.policyId, policyName: run.policyName, trigger: run.trigger, consistency: policy?.consistency ?? 'auto' },
          });
          const fresh = this.d.jobs.getJob(job.id) ?? job;
          this.d.store.updateRunVm(runId, vm.vmId, { state: fresh.state === 'running' ? 'running' : 'queued', jobId: job.id, joined, attempts: vm.attempts + 1 });
          slots--;
          // a job that was already over (cannot happen for a queued submit, but be exact)
          if (!['queued', 'running'].includes(fresh.state)) this.applyJob({ ...vm, jobId: job.id, attempts: vm.attempts + 1, joined }, fresh);
        } catch (err) {
          if (isAppError(err, 'SERVICE_STOPPING')) return;
          this.settleVm(policy, runId, vm.vmId, vm.vmName, 'failed', `could not queue its backup: ${describeError(err)}`);
        }
      }
    }
    const after = this.d.store.runVms(runId);
    if (after.every((v) => TERMINAL_VM.includes(v.state))) this.finish(run, policy, after);
  }

  private finish(run: StoredRun, policy: StoredPolicy | undefined, vms: StoredRunVm[]): void {
    const n = (s: PolicyRunVmState): number => vms.filter((v) => v.state === s).length;
    const ok = n('succeeded');
    const bad = n('failed');
    const skipped = n('skipped') + n('cancelled');
    const state = vms.length === 0 || ok === vms.length ? 'succeeded' : ok === 0 && bad > 0 ? 'failed' : 'partial';
    const message =
      vms.length === 0 ? 'the selection matched no vm' : `${ok} succeeded, ${bad} failed, ${skipped} skipped${vms.some((v) => v.fellBackToFull) ? `, ${vms.filter((v) => v.fellBackToFull).length} fell back to a full backup` : ''}`;
    const close = (): void => {
      this.d.store.finishRun(run.id, state, this.clock().toISOString(), message);
      this.d.log.info({ runId: run.id, policy: run.policyName, state }, `policy run finished: ${message}`);
      const severity = bad > 0 ? 'error' : skipped > 0 || vms.length === 0 ? 'warning' : 'normal';
      this.work.event({ severity, description: `olvm-backup policy "${run.policyName}" (${run.trigger} run) finished: ${message}` });
    };
    const hook = this.d.retention;
    if (!hook || !policy || ok === 0) {
      close();
      return;
    }
    // Retention (the new points' locks, the prune) lands before the run reads as finished, so
    // nobody sees a finished run whose points are still unlocked. A restart in between finds
    // the run still open and applies it again (lengthening a lock and pruning are idempotent).
    if (this.finishing.has(run.id)) return;
    this.finishing.add(run.id);
    this.work.track(
      hook(policy, run, vms)
        .catch((err: unknown) => this.d.log.warn({ runId: run.id, err: describeError(err) }, 'retention after the policy run failed'))
        .then(() => {
          if (!this.stopped) close();
        })
        .finally(() => this.finishing.delete(run.id)),
    );
  }

  private onJob(job: Job): void {
    if (this.stopped) return;
    // runs of overlapping policies may share one job (the second joined the first's)
    for (const vm of this.d.store.runVmsByJob(job.id)) {
      if (TERMINAL_VM.includes(vm.state)) continue;
      this.applyJob(vm, job);
      if (job.state !== 'queued' && job.state !== 'running') this.advance(vm.runId);
    }
  }

  /** A child's job changed: the VM's state in its run follows. */
  private applyJob(vm: StoredRunVm, job: Job): void {
    const policy = this.d.store.getPolicy(this.d.store.getRun(vm.runId)?.policyId ?? '');
    switch (job.state) {
      case 'queued':
        return;
      case 'running':
        if (vm.state !== 'running') this.d.store.updateRunVm(vm.runId, vm.vmId, { state: 'running' });
        return;
      case 'succeeded': {
        const fulls = (job.result?.disks ?? []).filter((d) => d.mode === 'full' && d.reason !== 'first-backup');
        this.d.store.updateRunVm(vm.runId, vm.vmId, { state: 'succeeded', fellBackToFull: fulls.length > 0, finishedAt: job.finishedAt ?? this.clock().toISOString(), reason: null });
        if (fulls.length > 0) {
          const why = fulls.map((d) => `${d.disk}: ${d.reason}`).join(', ');
          this.work.event({ severity: 'warning', vmId: vm.vmId, description: `olvm-backup policy "${policy?.name ?? vm.runId}": vm ${vm.vmName} fell back to a full backup (${why})` });
        }
        return;
      }
      case 'failed':
        // the backup runner has posted the failure itself
        this.d.store.updateRunVm(vm.runId, vm.vmId, { state: 'failed', reason: job.error?.message ?? 'failed', finishedAt: job.finishedAt ?? this.clock().toISOString() });
        return;
      case 'cancelled':
        this.settleVm(policy, vm.runId, vm.vmId, vm.vmName, 'cancelled', job.error?.message ?? 'cancelled');
        return;
      case 'interrupted':
        if (vm.attempts < MAX_ATTEMPTS) {
          this.d.store.updateRunVm(vm.runId, vm.vmId, { state: 'pending', reason: `attempt ${vm.attempts} interrupted by a stop of the service` });
        } else {
          this.settleVm(policy, vm.runId, vm.vmId, vm.vmName, 'failed', `interrupted ${vm.attempts} times by stops of the service`);
        }
        return;
    }
  }

  /** A VM's outcome that the backup runner does not report: recorded and posted as an event. */
  private settleVm(policy: StoredPolicy | undefined, runId: string, vmId: string, vmName: string, state: PolicyRunVmState, reason: string, linkVm = true): void {
    this.d.store.updateRunVm(runId, vmId, { state, reason, finishedAt: this.clock().toISOString() });
    const name = policy?.name ?? this.d.store.getRun(runId)?.policyName ?? runId;
    const verb = state === 'failed' ? 'failed' : state === 'cancelled' ? 'was cancelled' : 'was skipped';
    // the engine refuses an event linked to a VM it does not have
    this.work.event({ severity: state === 'failed' ? 'error' : 'warning', ...(linkVm ? { vmId } : {}), description: `olvm-backup policy "${name}": backup of vm ${vmName} ${verb}: ${reason}` });
  }

  /** For tests: settles when background work (selection, events) started so far is done. */
  async idle(): Promise<void> {
    await this.work.idle();
  }
}

/** The VMs a selection means now, through the service account. VM ids that no longer exist are
 *  returned apart (the run reports them skipped). */
export async function selectVms(engine: SchedulerEngine, sel: PolicyInput['selection']): Promise<{ vms: Vm[]; missing: string[] }> {
  if ('vmIds' in sel) {
    const vms: Vm[] = [];
    const missing: string[] = [];
    for (const id of sel.vmIds) {
      try {
        vms.push(await engine.getVm(id));
      } catch (err) {
        if (!isAppError(err, 'ENGINE_NOT_FOUND')) throw err;
        missing.push(id);
      }
    }
    return { vms, missing };
  }
  if ('tag' in sel) {
    if (!(await engine.findTagByName(sel.tag))) throw new AppError('NOT_FOUND', `the engine has no tag "${sel.tag}" (any more)`);
    return { vms: sortByName(await engine.findVmsByTag(sel.tag)), missing: [] };
  }
  return { vms: sortByName(await engine.findVms(sel.search)), missing: [] };
}

function sortByName(vms: Vm[]): Vm[] {
  return [...vms].sort((a, b) => a.name.localeCompare(b.name));
}
