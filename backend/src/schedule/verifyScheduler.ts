import type { Job, JobUser, SubmitJob } from '../jobs';
import type { StoredPolicy } from './store';
import { describeError } from '../errors';
import type { Logger } from '../util/log';
import { localTime } from './cron';
import { dueFire, nextFire, triggerFor } from './plan';
import { selectVms, type SchedulerEngine } from './selection';
import { BackgroundWork } from './background';

export interface VerifySchedulerDeps {
  store: {
    listPolicies(): StoredPolicy[];
    setVerifyFiredThrough(id: string, at: string): void;
  };
  queue: {
    submit(req: SubmitJob): { job: Job; joined: boolean };
    on(event: 'job', fn: (job: Job) => void): unknown;
    off(event: 'job', fn: (job: Job) => void): unknown;
  };
  /** Whether a verify of this VM is queued or running (a second one would only repeat it). */
  verifyPending(vmId: string): boolean;
  engine: SchedulerEngine;
  log: Logger;
  clock?: () => Date;
  maxSleepMs?: number;
}

/** Who scheduled verify jobs are "requested by" (jobs list, audit of damage marks). */
export const VERIFY_SCHEDULER: JobUser = { id: 'olvm-backup-verify-scheduler', name: 'the verify scheduler' };

/**
 * Runs the policies' verify schedules: at each fire time (in the policy's zone) one verify job
 * per VM the policy selects then, re-hashing every chunk of that VM's points (a damaged chunk
 * marks the points; the next backup heals them). The watermark is in the catalog
 * (verify_fired_through), so a restart neither repeats a fire time nor forgets one: fire times
 * missed while the service was down give one verify at start-up, logged as catch-up. A VM whose
 * verify is still queued or running is not queued twice. Outcomes go to the engine's event log:
 * damage or failure as errors, a clean verify as a normal event.
 */
export class VerifyScheduler {
  private readonly clock: () => Date;
  private readonly maxSleepMs: number;
  private timer: NodeJS.Timeout | undefined;
  private startedAt: Date | undefined;
  private stopped = false;
  /** Policies whose VMs are being resolved (a slow engine must not fire them twice). */
  private readonly resolving = new Set<string>();
  /** Our jobs → the policy that asked, for the events (lost on restart: then the job's own name says it). */
  private readonly ours = new Map<string, string>();
  private readonly work: BackgroundWork;
  private readonly onJobListener = (job: Job): void => this.onJob(job);

  constructor(private readonly d: VerifySchedulerDeps) {
    this.clock = d.clock ?? (() => new Date());
    this.work = new BackgroundWork(d.engine, d.log);
    this.maxSleepMs = d.maxSleepMs ?? 60_000;
  }

  start(): void {
    if (this.stopped || this.startedAt) return;
    this.startedAt = this.clock();
    this.d.queue.on('job', this.onJobListener);
    this.tick();
  }

  /** Stops the timer; waits for what is in flight (VM resolution, events). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.d.queue.off('job', this.onJobListener);
    await this.work.idle();
  }

  policiesChanged(): void {
    if (this.startedAt && !this.stopped) this.tick();
  }

  tick(): void {
    if (this.stopped || !this.startedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.clock();
    let wake = now.getTime() + this.maxSleepMs;
    for (const p of this.d.store.listPolicies()) {
      if (!p.enabled || !p.verifySchedule) continue;
      try {
        const spec = { schedule: p.verifySchedule, timeZone: p.timeZone };
        const due = this.resolving.has(p.id) ? null : dueFire(spec, new Date(p.verifyFiredThrough), now);
        if (due) this.fire(p, due.fireAt, due.missed);
        const next = nextFire(spec, new Date(Math.max(now.getTime(), Date.parse(p.verifyFiredThrough))));
        if (next) wake = Math.min(wake, next.getTime());
      } catch (err) {
        this.d.log.error({ policy: p.name, err: describeError(err) }, 'verify scheduler step failed');
      }
    }
    // a little after the instant, so the cron library sees it as past
    this.timer = setTimeout(() => this.tick(), Math.max(50, wake - now.getTime() + 50));
    this.timer.unref();
  }

  private fire(p: StoredPolicy, fireAt: Date, missed: number): void {
    const trigger = triggerFor(fireAt, this.startedAt ?? fireAt);
    this.resolving.add(p.id);
    const work = (async () => {
      try {
        const { vms } = await selectVms(this.d.engine, p.selection);
        const queued: string[] = [];
        for (const vm of vms) {
          if (this.d.verifyPending(vm.id)) continue;
          const { job } = this.d.queue.submit({
            vmId: vm.id,
            vmName: vm.name,
            hostId: null,
            requestedBy: VERIFY_SCHEDULER,
            spec: { v: 1, kind: 'verify', target: { vmKey: vm.id }, origin: { policyId: p.id, policyName: p.name, runId: null, trigger, scheduledAt: fireAt.toISOString() } },
          });
          this.ours.set(job.id, p.name);
          queued.push(vm.name);
        }
        this.d.log.info({ policy: p.name, trigger, fireAt: fireAt.toISOString(), missed, vms: queued }, 'scheduled verify queued');
        if (trigger === 'catch-up') {
          this.work.event({ severity: 'warning', description: `olvm-backup policy "${p.name}": the verify due at ${localTime(fireAt, p.timeZone)} was missed while the backup service was down${missed > 0 ? ` (and ${missed} earlier)` : ''}; running it now` });
        }
      } catch (err) {
        this.d.log.error({ policy: p.name, err: describeError(err) }, 'scheduled verify: the vms could not be resolved');
        this.work.event({ severity: 'error', description: `olvm-backup policy "${p.name}": the scheduled verify could not start: ${describeError(err)}` });
      } finally {
        // handled, whatever the outcome: the next fire time is the next chance
        this.d.store.setVerifyFiredThrough(p.id, fireAt.toISOString());
        this.resolving.delete(p.id);
      }
    })();
    this.work.track(work);
  }

  private onJob(job: Job): void {
    if (job.kind !== 'verify' || job.requestedBy.id !== VERIFY_SCHEDULER.id) return;
    if (job.state === 'queued' || job.state === 'running') return;
    const policy = this.ours.get(job.id);
    this.ours.delete(job.id);
    const who = `olvm-backup${policy ? ` policy "${policy}"` : ''}: scheduled verify of vm ${job.vmName}`;
    const v = job.result?.verified;
    if (job.state === 'succeeded' && v && v.damaged.length === 0) {
      this.work.event({ severity: 'normal', vmId: job.vmId, description: `${who}: ${v.points} restore point(s) checked, every chunk whole` });
    } else if (job.state === 'succeeded' && v) {
      this.work.event({ severity: 'error', vmId: job.vmId, description: `${who}: ${v.damaged.length} of ${v.points} restore point(s) damaged (${v.damaged.join(', ')}); the next backup stores fresh data for them` });
    } else if (job.state === 'failed') {
      this.work.event({ severity: 'error', vmId: job.vmId, description: `${who} failed: ${job.error?.message ?? 'unknown error'}` });
    }
  }

  /** For tests: settles when background work started so far is done. */
  async idle(): Promise<void> {
    await this.work.idle();
  }
}
