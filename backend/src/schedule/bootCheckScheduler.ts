/**
 * The policies' weekly boot checks (`bootCheck: newest-weekly`): the newest point of each VM a
 * policy selects is boot-checked when none of that VM's points was boot-checked in the last 7
 * days. The state is the repository's own records (the catalog's point summaries show them), so a
 * restart neither repeats a check nor forgets one; a check that could not run at all (no record)
 * is not asked again for the same 7 days while the process lives. The queue runs boot checks one
 * at a time. Outcomes go to the engine's event log: a failed or timed-out boot as an error.
 */
import { describeError } from '../errors';
import type { Job, JobUser, SubmitJob } from '../jobs';
import type { Logger } from '../util/log';
import { BackgroundWork } from './background';
import { selectVms, type SchedulerEngine } from './selection';
import type { StoredPolicy } from './store';

export interface BootCheckSchedulerDeps {
  store: { listPolicies(): StoredPolicy[] };
  queue: {
    submit(req: SubmitJob): { job: Job; joined: boolean };
    on(event: 'job', fn: (job: Job) => void): unknown;
    off(event: 'job', fn: (job: Job) => void): unknown;
  };
  /** The VM's newest point, or undefined when it has none. */
  newestPoint(vmId: string): { id: string } | undefined;
  /** When the VM's latest boot check (of any of its points) started; null: never. */
  lastBootCheckAt(vmId: string): string | null;
  /** A boot check of this VM is queued or running. */
  bootCheckPending(vmId: string): boolean;
  engine: SchedulerEngine;
  log: Logger;
  clock?: () => Date;
  /** How often the policies are looked at (default an hour). */
  intervalMs?: number;
}

/** Who scheduled boot checks are "requested by". */
export const BOOT_CHECK_SCHEDULER: JobUser = { id: 'olvm-backup-bootcheck-scheduler', name: 'the boot check scheduler' };
export const BOOT_CHECK_PERIOD_MS = 7 * 24 * 3600_000;

export class BootCheckScheduler {
  private readonly clock: () => Date;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private running = false;
  /** VM id → when this process last asked for its boot check. */
  private readonly asked = new Map<string, number>();
  /** Our jobs → the policy that asked (lost on restart: then the job's own name says it). */
  private readonly ours = new Map<string, string>();
  private readonly work: BackgroundWork;
  private readonly onJobListener = (job: Job): void => this.onJob(job);

  constructor(private readonly d: BootCheckSchedulerDeps) {
    this.clock = d.clock ?? (() => new Date());
    this.intervalMs = d.intervalMs ?? 3600_000;
    this.work = new BackgroundWork(d.engine, d.log);
  }

  start(): void {
    if (this.stopped || this.started) return;
    this.started = true;
    this.d.queue.on('job', this.onJobListener);
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.d.queue.off('job', this.onJobListener);
    await this.work.idle();
  }

  /** A policy was saved: look again now (a policy that just asked for boot checks gets them). */
  policiesChanged(): void {
    if (this.started && !this.stopped) this.tick();
  }

  tick(): void {
    if (this.stopped || !this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref();
    // one pass at a time: a slow engine must not make two passes queue the same VM
    if (this.running) return;
    this.running = true;
    this.work.track(this.pass().finally(() => (this.running = false)));
  }

  /** For tests: settles when the work started so far is done. */
  async idle(): Promise<void> {
    await this.work.idle();
  }

  private async pass(): Promise<void> {
    const seen = new Set<string>();
    for (const p of this.d.store.listPolicies()) {
      if (!p.enabled || p.bootCheck !== 'newest-weekly') continue;
      try {
        const { vms } = await selectVms(this.d.engine, p.selection);
        const queued: string[] = [];
        for (const vm of vms) {
          if (seen.has(vm.id)) continue;
          seen.add(vm.id);
          if (this.due(vm.id)) {
            const point = this.d.newestPoint(vm.id);
            if (!point) continue;
            const now = this.clock();
            const { job } = this.d.queue.submit({
              vmId: vm.id,
              vmName: vm.name,
              hostId: null,
              requestedBy: BOOT_CHECK_SCHEDULER,
              spec: { v: 1, kind: 'bootcheck', pointId: point.id, disk: null, origin: { policyId: p.id, policyName: p.name, runId: null, trigger: 'schedule', scheduledAt: now.toISOString() } },
            });
            this.asked.set(vm.id, now.getTime());
            this.ours.set(job.id, p.name);
            queued.push(`${vm.name} (${point.id})`);
          }
        }
        if (queued.length > 0) this.d.log.info({ policy: p.name, points: queued }, 'weekly boot checks queued');
      } catch (err) {
        this.d.log.error({ policy: p.name, err: describeError(err) }, 'weekly boot checks: the vms could not be resolved');
      }
    }
  }

  /** No boot check of the VM pending, none in the last 7 days, none asked by us in that time. */
  private due(vmId: string): boolean {
    const now = this.clock().getTime();
    if (now - (this.asked.get(vmId) ?? -Infinity) < BOOT_CHECK_PERIOD_MS) return false;
    const last = this.d.lastBootCheckAt(vmId);
    if (last !== null && now - Date.parse(last) < BOOT_CHECK_PERIOD_MS) return false;
    return !this.d.bootCheckPending(vmId);
  }

  private onJob(job: Job): void {
    if (job.kind !== 'bootcheck' || job.requestedBy.id !== BOOT_CHECK_SCHEDULER.id) return;
    if (job.state === 'queued' || job.state === 'running') return;
    const policy = this.ours.get(job.id);
    this.ours.delete(job.id);
    const who = `olvm-backup${policy ? ` policy "${policy}"` : ''}: weekly boot check of vm ${job.vmName}`;
    const b = job.result?.bootCheck;
    if (job.state === 'succeeded' && b?.state === 'ok') {
      this.work.event({ severity: 'normal', vmId: job.vmId, description: `${who}: restore point ${job.result?.pointId ?? ''} booted (${b.reason})` });
    } else if (job.state === 'succeeded' && b) {
      this.work.event({ severity: 'error', vmId: job.vmId, description: `${who}: restore point ${job.result?.pointId ?? ''} did not boot: ${b.state === 'timeout' ? 'timed out' : 'failed'} (${b.reason})` });
    } else if (job.state === 'failed') {
      this.work.event({ severity: 'error', vmId: job.vmId, description: `${who} could not run: ${job.error?.message ?? 'unknown error'}` });
    }
  }
}
