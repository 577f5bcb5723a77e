import { randomUUID } from 'crypto';
import { EventEmitter } from 'events';
import type { Job, JobProgress, JobResult, JobUser, RunnerProgress } from './model';
import { AppError, describeError, isAppError } from '../errors';
import { ProgressTracker } from './progress';
import type { JobSpec, SpecOf } from './spec';
import type { JobLimits, JobRunner, JobStore, SubmitJob } from './types';

export interface JobQueueOptions {
  store: JobStore;
  runner: JobRunner;
  limits: JobLimits;
  /** Minimum time between two progress messages of one job (phase changes go out at once). */
  progressIntervalMs?: number;
  /** How often a running job's progress is written to the catalog. */
  persistIntervalMs?: number;
  onLog?: (job: Job, level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface JobQueueEvents {
  job: [job: Job];
  progress: [job: Job, progress: JobProgress];
}

interface Running {
  job: Job;
  controller: AbortController;
  tracker: ProgressTracker;
  lastPersist: number;
  done: Promise<void>;
}

/** VMs that are down have no host until the engine starts them; they share one pool. */
const UNPLACED = 'unplaced';
const BOOT_CHECK_POOL = 'boot-checks';
/** Pools that run one job at a time whatever the per-host limit. */
const ONE_AT_A_TIME: ReadonlySet<string> = new Set([BOOT_CHECK_POOL]);

/**
 * The service's backups: admitted in arrival order under a global and a per-host limit, one per
 * VM at a time, every state change written to the catalog before anyone hears of it, so a
 * restart finds exactly what was queued (and runs it) and what was running (and says so).
 */
export class JobQueue extends EventEmitter<JobQueueEvents> {
  private readonly running = new Map<string, Running>();
  private readonly progressIntervalMs: number;
  private readonly persistIntervalMs: number;
  private stopping = false;
  /** VM id → holds on its backups (hold()). */
  private readonly held = new Map<string, number>();

  constructor(private readonly opts: JobQueueOptions) {
    super();
    this.progressIntervalMs = opts.progressIntervalMs ?? 250;
    this.persistIntervalMs = opts.persistIntervalMs ?? 2_000;
    if (!(opts.limits.global >= 1 && opts.limits.perHost >= 1)) throw new AppError('INVALID_ARGUMENT', 'job limits must be at least 1');
  }

  /** After a start-up: jobs the previous process was running cannot be resumed (their QEMU
   *  state is cleaned on the VM's next backup); queued ones run now, except the backups of VMs
   *  that `beforeRun` holds (it runs once the interrupted jobs are marked). Returns the
   *  interrupted. */
  start(beforeRun?: (interrupted: Job[]) => void): Job[] {
    const interrupted = this.opts.store.markRunningInterrupted(new Date().toISOString());
    for (const job of interrupted) this.emit('job', job);
    beforeRun?.(interrupted);
    this.pump();
    return interrupted;
  }

  /**
   * No backup of these VMs starts until `until` settles, or `maxMs` has passed (a settlement
   * that hangs must not stop the VM's backups for good). For what a dead process left behind
   * at the engine: a backup started before its engine backup is finalized would meet the
   * engine's lock on the VM (and one of a VM being stopped again would read a VM going down).
   */
  hold(vmIds: Iterable<string>, until: Promise<unknown>, maxMs: number): void {
    const ids = [...new Set(vmIds)];
    if (ids.length === 0) return;
    for (const id of ids) this.held.set(id, (this.held.get(id) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      for (const id of ids) {
        const n = (this.held.get(id) ?? 1) - 1;
        if (n > 0) this.held.set(id, n);
        else this.held.delete(id);
      }
      this.pump();
    };
    const timer = setTimeout(release, maxMs);
    timer.unref();
    until.then(release, release);
  }

  /** Queues a job. A backup of a VM with a backup queued or running returns that one
   *  (`joined`); a full backup asked while a plain one is pending is refused: silently joining
   *  would not give what was asked. Restores never join (each has its own target). A joined job
   *  that is still queued takes the longer of both locks; one already running keeps its own (the
   *  joiner lengthens the point's lock afterwards, see schedule/retention.ts). Its consistency
   *  stays the first asker's: neither choice is a superset of the other. */
  submit(req: SubmitJob): { job: Job; joined: boolean } {
    if (this.stopping) throw new AppError('SERVICE_STOPPING', 'the backup service is stopping: try again when it is back');
    const spec = req.spec;
    const kind = spec.kind;
    const forceFull = spec.kind === 'backup' && spec.forceFull;
    const existing = kind === 'backup' ? this.opts.store.activeJobs().find((j) => j.kind === 'backup' && j.vmId === req.vmId) : undefined;
    if (existing) {
      if (forceFull && !existing.forceFull) {
        throw new AppError('JOB_CONFLICT', `a backup of vm ${req.vmName} is already ${existing.state} (job ${existing.id}); ask for the full backup when it has finished`, {
          details: { jobId: existing.id },
        });
      }
      if (spec.kind === 'backup' && existing.state === 'queued') this.raiseLock(existing, spec, req.requestedBy);
      return { job: existing, joined: true };
    }
    const job: Job = {
      id: randomUUID(),
      kind,
      state: 'queued',
      vmId: req.vmId,
      vmName: req.vmName,
      hostId: req.hostId,
      requestedBy: req.requestedBy,
      forceFull,
      restore: spec.kind === 'restore' ? { pointId: spec.pointId, mode: spec.request.mode, target: spec.target } : null,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      cancelRequested: false,
      progress: null,
      result: null,
      error: null,
    };
    this.opts.store.insertJob(job, spec);
    this.log(job, 'info', `${describeSpec(spec, req.vmName)} queued by ${req.requestedBy.name}`);
    this.emit('job', job);
    this.pump();
    return { job: this.opts.store.getJob(job.id) ?? job, joined: false };
  }

  /** The point a joined backup makes is the joiner's point too: it is committed with the longer
   *  lock. Only before the job starts (the runner reads its spec then). */
  private raiseLock(existing: Job, joiner: SpecOf<'backup'>, by: JobUser): void {
    const current = this.opts.store.jobSpec(existing.id);
    if (current.kind !== 'backup' || joiner.lockDays <= current.lockDays) return;
    if (this.opts.store.updateQueuedSpec(existing.id, { ...current, lockDays: joiner.lockDays })) {
      this.log(existing, 'info', `retention lock raised from ${current.lockDays} to ${joiner.lockDays} days: ${by.name} joined this backup`);
    }
  }

  /** A queued job ends at once; a running one is aborted and ends when its cleanup is done. */
  cancel(jobId: string, by: JobUser): Job {
    const job = this.opts.store.getJob(jobId);
    if (!job) throw new AppError('JOB_NOT_FOUND', `job ${jobId} not found`);
    if (job.state === 'queued') {
      const now = new Date().toISOString();
      const done = this.opts.store.updateJob(jobId, {
        state: 'cancelled',
        cancelRequested: true,
        finishedAt: now,
        error: { code: 'JOB_CANCELLED', message: `cancelled by ${by.name} before it started` },
      });
      this.log(done, 'info', `cancelled by ${by.name} before it started`);
      this.emit('job', done);
      this.pump();
      return done;
    }
    const run = this.running.get(jobId);
    if (job.state !== 'running' || !run) throw new AppError('JOB_NOT_CANCELLABLE', `job ${jobId} has already ${job.state === 'running' ? 'stopped' : job.state}`);
    if (job.cancelRequested) return job;
    const updated = this.opts.store.updateJob(jobId, { cancelRequested: true });
    run.job = updated;
    this.log(updated, 'info', `cancel requested by ${by.name}; cleaning up`);
    this.emit('job', updated);
    run.controller.abort(new AppError('JOB_CANCELLED', `cancelled by ${by.name}`));
    return updated;
  }

  runningJobs(): Job[] {
    return [...this.running.values()].map((r) => r.job);
  }

  /** Latest progress of a running job (fresher than the catalog's copy). */
  progressOf(jobId: string): JobProgress | null {
    return this.running.get(jobId)?.tracker.current ?? null;
  }

  /**
   * Stops admitting, aborts the running jobs (state `interrupted`) and waits until each one's
   * cleanup has run, at most `timeoutMs`. Queued jobs stay queued for the next start.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort(new AppError('SERVICE_STOPPING', 'the backup service is stopping'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(runs.map((r) => r.done)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  private pump(): void {
    if (this.stopping) return;
    const perHost = new Map<string, number>();
    for (const r of this.running.values()) perHost.set(hostKey(r.job), (perHost.get(hostKey(r.job)) ?? 0) + 1);
    for (const job of this.opts.store.activeJobs()) {
      if (this.running.size >= this.opts.limits.global) return;
      if (job.state !== 'queued') continue;
      if (job.kind === 'backup' && this.held.has(job.vmId)) continue;
      const key = hostKey(job);
      if ((perHost.get(key) ?? 0) >= (ONE_AT_A_TIME.has(key) ? 1 : this.opts.limits.perHost)) continue;
      perHost.set(key, (perHost.get(key) ?? 0) + 1);
      this.launch(job);
    }
  }

  private launch(queued: Job): void {
    const job = this.opts.store.updateJob(queued.id, { state: 'running', startedAt: new Date().toISOString() });
    const run: Running = {
      job,
      controller: new AbortController(),
      tracker: new ProgressTracker(this.progressIntervalMs),
      lastPersist: 0,
      done: Promise.resolve(),
    };
    this.running.set(job.id, run);
    this.log(job, 'info', 'started');
    this.emit('job', job);
    // execute() settles the job itself; only a catalog that fails under it lands here
    run.done = this.execute(run).catch((err: unknown) => this.opts.onLog?.(job, 'error', `job bookkeeping failed: ${describeError(err)}`));
  }

  private async execute(run: Running): Promise<void> {
    const { store } = this.opts;
    let result: JobResult | undefined;
    let failure: unknown;
    try {
      result = await this.opts.runner({
        job: run.job,
        spec: store.jobSpec(run.job.id),
        facts: store.jobFacts(run.job.id),
        signal: run.controller.signal,
        progress: (p) => this.onProgress(run, p),
        log: (level, message) => this.log(run.job, level, message),
        remember: (patch) => store.rememberFacts(run.job.id, patch),
      });
    } catch (err) {
      failure = err;
    }
    try {
      const finishedAt = new Date().toISOString();
      const progress = run.tracker.current;
      let final: Job;
      if (result) {
        final = store.updateJob(run.job.id, { state: 'succeeded', finishedAt, result, progress: progress && { ...progress, phase: 'done', etaSeconds: 0 } });
        for (const w of result.warnings) this.log(final, 'warn', w);
        this.log(final, 'info', final.kind === 'verify' || final.kind === 'sync' ? 'succeeded' : final.kind === 'bootcheck' ? `succeeded: boot check of restore point ${result.pointId}` : `succeeded: restore point ${result.pointId}`);
      } else {
        const reason: unknown = run.controller.signal.aborted ? run.controller.signal.reason : undefined;
        const state = isAppError(reason, 'JOB_CANCELLED') ? 'cancelled' : isAppError(reason, 'SERVICE_STOPPING') ? 'interrupted' : 'failed';
        const error =
          state === 'cancelled'
            ? { code: 'JOB_CANCELLED', message: (reason as AppError).message }
            : state === 'interrupted'
              ? { code: 'JOB_INTERRUPTED', message: 'the backup service stopped while this job ran' }
              : { code: isAppError(failure) ? failure.code : 'BACKUP_FAILED', message: describeError(failure) };
        final = store.updateJob(run.job.id, { state, finishedAt, progress, error });
        this.log(final, state === 'failed' ? 'error' : 'info', state === 'failed' ? `failed: ${error.message}` : `${state}: ${error.message}`);
      }
      this.emit('job', final);
    } finally {
      this.running.delete(run.job.id);
      this.pump();
    }
  }

  private onProgress(run: Running, p: RunnerProgress): void {
    const out = run.tracker.update(p);
    if (!out) return;
    const now = Date.now();
    if (now - run.lastPersist >= this.persistIntervalMs || p.phase !== run.job.progress?.phase) {
      run.lastPersist = now;
      run.job = this.opts.store.updateJob(run.job.id, { progress: out });
    }
    this.emit('progress', run.job, out);
  }

  private log(job: Job, level: 'info' | 'warn' | 'error', message: string): void {
    this.opts.store.appendLog(job.id, { at: new Date().toISOString(), level, message });
    this.opts.onLog?.(job, level, message);
  }
}

/** The job as its first log line names it. */
function describeSpec(spec: JobSpec, vmName: string): string {
  switch (spec.kind) {
    case 'restore':
      return `restore of ${vmName} (point ${spec.pointId})`;
    case 'verify':
      return 'pointId' in spec.target ? `verify of point ${spec.target.pointId} of vm ${vmName}` : 'vmKey' in spec.target ? `verify of every point of vm ${vmName}` : 'verify of the repository';
    case 'bootcheck':
      return `boot check of point ${spec.pointId} of vm ${vmName}`;
    case 'sync':
      return `copy of the points of vm ${vmName} to ${spec.to}`;
    case 'backup':
      return `${spec.forceFull ? 'full backup' : 'backup'} of vm ${vmName}${backupChoices(spec)}`;
  }
}

/** Restores load the engine's image transfers, not the source VM's host: one pool of their own;
 *  verifies load the repository only: another; boot checks load this machine's CPUs (a guest
 *  under TCG takes a core): a pool of one (ONE_AT_A_TIME). */
function hostKey(job: Job): string {
  return job.kind === 'restore' ? 'engine-image-transfers' : job.kind === 'verify' ? 'repository-verify' : job.kind === 'sync' ? 'repository-sync' : job.kind === 'bootcheck' ? BOOT_CHECK_POOL : (job.hostId ?? UNPLACED);
}

/** What a backup asked for beyond the defaults, for its log: ` (method engine, consistency filesystem)`. */
function backupChoices(spec: SpecOf<'backup'>): string {
  const asked = [spec.method && spec.method !== 'auto' ? `method ${spec.method}` : '', spec.consistency !== 'auto' ? `consistency ${spec.consistency}` : ''].filter((x) => x !== '');
  return asked.length > 0 ? ` (${asked.join(', ')})` : '';
}
