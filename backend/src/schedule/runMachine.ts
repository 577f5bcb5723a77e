/**
 * A policy run as a pure state machine: `next(run, event, context) → { run, effects }`. Every
 * decision about a run — which VMs it backs up, when a child may start (window, concurrency),
 * what a child's job outcome means, when the run ends and how — is here, with no I/O; the
 * scheduler (scheduler.ts) feeds it events (the engine's selection, the queue's job changes,
 * the clock), persists the run it returns and carries out the effects.
 *
 * Run states: resolving → running → succeeded | partial | failed (a fire time that found the
 * previous run still going is recorded `skipped` and never enters this machine). VM states:
 * pending → queued → running → succeeded | failed | skipped | cancelled; a child interrupted by
 * a stop of the service goes back to pending (at most MAX_ATTEMPTS submissions in all).
 */
import { localTime } from './cron';
import type { PolicyRunState, PolicyRunVmState } from './model';
import { freeSlots, windowState } from './plan';
import type { StoredRun, StoredRunVm } from './store';

/** A child job interrupted by a stop of the service is submitted again, this many times in all. */
export const MAX_ATTEMPTS = 3;
export const TERMINAL_VM: readonly PolicyRunVmState[] = ['succeeded', 'failed', 'skipped', 'cancelled'];
export const ACTIVE_RUN: readonly PolicyRunState[] = ['resolving', 'running'];

/** A run with its VMs, and two flags that live in memory only (a restart redoes that work). */
export interface RunSnapshot {
  run: StoredRun;
  vms: StoredRunVm[];
  /** The engine is being asked for the run's VMs. */
  resolving: boolean;
  /** Every VM is done and the policy's retention is being applied before the run ends. */
  finishing: boolean;
}

/** What a child's job looks like to the run. */
export interface ChildJob {
  id: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
  finishedAt: string | null;
  errorMessage: string | null;
  /** Disks copied whole for another reason than being the first backup ("fell back"). */
  fellBack: Array<{ disk: string; reason: string }>;
}

export type RunEvent =
  /** The clock moved, or the run is looked at again (start-up, a policy change). */
  | { type: 'tick' }
  /** `denied`: VMs the policy's owner may no longer back up (skipped, with the reason). */
  | { type: 'resolved'; vms: Array<{ vmId: string; vmName: string; hostId: string | null }>; missing: string[]; denied?: Array<{ vmId: string; reason: string }> }
  | { type: 'resolve-failed'; message: string }
  /** The queue took (or joined) the backup a `submit` effect asked for. */
  | { type: 'submitted'; vmId: string; job: ChildJob; joined: boolean }
  /** The queue refused it; `stopping`: the service is shutting down (the VM stays pending). */
  | { type: 'submit-failed'; vmId: string; message: string; stopping: boolean }
  | { type: 'job'; vmId: string; job: ChildJob }
  /** At start-up: the job a queued or running VM pointed at is not in the catalog. */
  | { type: 'job-missing'; vmId: string }
  | { type: 'retention-done' };

export type RunEffect =
  | { type: 'resolve' }
  | { type: 'submit'; vmId: string; vmName: string; hostId: string | null }
  | { type: 'cancel-job'; jobId: string }
  | { type: 'apply-retention'; vms: StoredRunVm[] }
  | { type: 'event'; severity: 'normal' | 'warning' | 'error'; vmId?: string; description: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> };

export interface RunContext {
  now: Date;
  /** The run's policy as it is now (undefined: deleted since the run started). */
  policy: { name: string; timeZone: string } | undefined;
  /** A retention hook is configured (applied when at least one VM succeeded). */
  retention: boolean;
}

export function next(s: RunSnapshot, e: RunEvent, ctx: RunContext): { run: RunSnapshot; effects: RunEffect[] } {
  const t = new Transition(s, ctx);
  t.apply(e);
  return { run: t.s, effects: t.effects };
}

class Transition {
  readonly s: RunSnapshot;
  readonly effects: RunEffect[] = [];

  constructor(
    s: RunSnapshot,
    private readonly ctx: RunContext,
  ) {
    this.s = { ...s, run: { ...s.run }, vms: s.vms.map((v) => ({ ...v })) };
  }

  apply(e: RunEvent): void {
    const state = this.s.run.state;
    if (!ACTIVE_RUN.includes(state)) return; // a finished run takes no more events
    switch (e.type) {
      case 'tick':
        if (state === 'resolving') this.resolveOnce();
        else this.advance();
        return;
      case 'resolved':
        if (state === 'resolving') this.resolved(e.vms, e.missing, e.denied ?? []);
        return;
      case 'resolve-failed':
        if (state === 'resolving') this.resolveFailed(e.message);
        return;
      case 'retention-done':
        if (this.s.finishing) this.close();
        return;
      case 'submitted':
      case 'submit-failed':
      case 'job':
      case 'job-missing': {
        if (state !== 'running') return;
        const vm = this.s.vms.find((v) => v.vmId === e.vmId);
        if (!vm || TERMINAL_VM.includes(vm.state)) return;
        // the outcome of another job than the VM's current one (an earlier attempt), or of a job
        // of a VM waiting to be submitted again, changes nothing
        if (e.type === 'job' && (vm.jobId !== e.job.id || vm.state === 'pending')) return;
        if (e.type === 'submitted') this.submitted(vm, e.job, e.joined);
        else if (e.type === 'submit-failed') this.submitFailed(vm, e.message, e.stopping);
        else if (e.type === 'job') this.jobChanged(vm, e.job);
        else Object.assign(vm, { state: 'pending', jobId: null });
        // a service stopping takes no submission: looking again now would only ask again
        const settled = e.type === 'submitted' ? !['queued', 'running'].includes(e.job.state) : !(e.type === 'submit-failed' && e.stopping);
        if (settled) this.advance();
        return;
      }
    }
  }

  private resolveOnce(): void {
    if (this.s.resolving) return;
    this.s.resolving = true;
    this.effects.push({ type: 'resolve' });
  }

  private resolved(vms: Array<{ vmId: string; vmName: string; hostId: string | null }>, missing: string[], denied: Array<{ vmId: string; reason: string }>): void {
    const r = this.s.run;
    this.s.resolving = false;
    this.s.vms = [...vms, ...missing.map((id) => ({ vmId: id, vmName: id, hostId: null }))].map((v) => ({
      runId: r.id,
      vmId: v.vmId,
      vmName: v.vmName,
      hostId: v.hostId,
      state: 'pending',
      jobId: null,
      joined: false,
      attempts: 0,
      reason: null,
      fellBackToFull: false,
      finishedAt: null,
    }));
    r.state = 'running';
    r.message = null;
    // the engine refuses an event linked to a VM it does not have
    const gone = new Set(missing);
    for (const vm of this.s.vms) if (gone.has(vm.vmId)) this.settle(vm, 'skipped', 'the vm does not exist in the engine (any more)', false);
    // fail closed: what the owner may not back up any more is not backed up in their name
    for (const d of denied) {
      const vm = this.s.vms.find((v) => v.vmId === d.vmId && v.state === 'pending');
      if (vm) this.settle(vm, 'skipped', d.reason);
    }
    this.effects.push({ type: 'log', level: 'info', message: 'policy run selected its vms', fields: { vms: vms.map((v) => v.vmName) } });
    this.advance();
  }

  private resolveFailed(message: string): void {
    const r = this.s.run;
    this.s.resolving = false;
    const text = `selecting the vms failed: ${message}`;
    Object.assign(r, { state: 'failed', finishedAt: this.ctx.now.toISOString(), message: text });
    this.effects.push({ type: 'log', level: 'error', message: text });
    this.effects.push({ type: 'event', severity: 'error', description: `olvm-backup policy "${r.policyName}": ${text}` });
  }

  /** Window, cap, submissions, the end. */
  private advance(): void {
    const r = this.s.run;
    if (r.state !== 'running' || this.s.finishing) return;
    const ws = windowState({ start: r.windowStart, end: r.windowEnd }, this.ctx.now);
    if (ws === 'closed') {
      const closed = `not started before the backup window closed at ${localTime(new Date(r.windowEnd ?? 0), this.ctx.policy?.timeZone ?? 'UTC')}; the next run takes it`;
      for (const vm of this.s.vms) {
        if (vm.state === 'pending') {
          this.settle(vm, 'skipped', closed);
        } else if (vm.state === 'queued' && vm.jobId !== null && !vm.joined) {
          // still waiting in the queue: it would start outside the window
          this.settle(vm, 'skipped', closed);
          this.effects.push({ type: 'cancel-job', jobId: vm.jobId });
        }
      }
    } else if (ws === 'open') {
      let slots = freeSlots(r.concurrency, this.s.vms.filter((v) => v.state === 'queued' || v.state === 'running').length);
      for (const vm of this.s.vms) {
        if (slots <= 0) break;
        if (vm.state !== 'pending') continue;
        // queued from now on: a second look before the queue answers must not submit it again
        Object.assign(vm, { state: 'queued', jobId: null, joined: false, attempts: vm.attempts + 1 });
        this.effects.push({ type: 'submit', vmId: vm.vmId, vmName: vm.vmName, hostId: vm.hostId });
        slots--;
      }
    }
    if (this.s.vms.every((v) => TERMINAL_VM.includes(v.state))) this.finish();
  }

  private submitted(vm: StoredRunVm, job: ChildJob, joined: boolean): void {
    Object.assign(vm, { jobId: job.id, joined, state: job.state === 'running' ? 'running' : 'queued' });
    // a job that was already over (a joined one that ended meanwhile): its outcome counts now
    if (job.state !== 'queued' && job.state !== 'running') this.jobChanged(vm, job);
  }

  private submitFailed(vm: StoredRunVm, message: string, stopping: boolean): void {
    if (stopping) {
      // not the VM's fault: the next start submits it again
      Object.assign(vm, { state: 'pending', attempts: Math.max(0, vm.attempts - 1) });
      return;
    }
    this.settle(vm, 'failed', `could not queue its backup: ${message}`);
  }

  /** A child's job changed: the VM's state in its run follows. */
  private jobChanged(vm: StoredRunVm, job: ChildJob): void {
    const finishedAt = job.finishedAt ?? this.ctx.now.toISOString();
    switch (job.state) {
      case 'queued':
        return;
      case 'running':
        vm.state = 'running';
        return;
      case 'succeeded':
        Object.assign(vm, { state: 'succeeded', fellBackToFull: job.fellBack.length > 0, finishedAt, reason: null });
        if (job.fellBack.length > 0) {
          const why = job.fellBack.map((d) => `${d.disk}: ${d.reason}`).join(', ');
          this.effects.push({ type: 'event', severity: 'warning', vmId: vm.vmId, description: `olvm-backup policy "${this.policyName()}": vm ${vm.vmName} fell back to a full backup (${why})` });
        }
        return;
      case 'failed':
        // the backup runner has posted the failure itself
        Object.assign(vm, { state: 'failed', reason: job.errorMessage ?? 'failed', finishedAt });
        return;
      case 'cancelled':
        this.settle(vm, 'cancelled', job.errorMessage ?? 'cancelled');
        return;
      case 'interrupted':
        if (vm.attempts < MAX_ATTEMPTS) Object.assign(vm, { state: 'pending', reason: `attempt ${vm.attempts} interrupted by a stop of the service` });
        else this.settle(vm, 'failed', `interrupted ${vm.attempts} times by stops of the service`);
        return;
    }
  }

  /** Every VM is done: retention first (when there is something to keep or prune), then the end. */
  private finish(): void {
    const ok = this.s.vms.filter((v) => v.state === 'succeeded').length;
    if (this.ctx.retention && this.ctx.policy && ok > 0) {
      // the prune (and the policy's lock on the point of a backup the run joined) lands before
      // the run reads as finished; a restart in between finds the run open and applies it again
      // (idempotent: a lock only lengthens, a pruned point is gone)
      this.s.finishing = true;
      this.effects.push({ type: 'apply-retention', vms: this.s.vms.map((v) => ({ ...v })) });
      return;
    }
    this.close();
  }

  private close(): void {
    const vms = this.s.vms;
    const r = this.s.run;
    const n = (st: PolicyRunVmState): number => vms.filter((v) => v.state === st).length;
    const ok = n('succeeded');
    const bad = n('failed');
    const skipped = n('skipped') + n('cancelled');
    const fell = vms.filter((v) => v.fellBackToFull).length;
    const state: PolicyRunState = vms.length === 0 || ok === vms.length ? 'succeeded' : ok === 0 && bad > 0 ? 'failed' : 'partial';
    const message = vms.length === 0 ? 'the selection matched no vm' : `${ok} succeeded, ${bad} failed, ${skipped} skipped${fell > 0 ? `, ${fell} fell back to a full backup` : ''}`;
    this.s.finishing = false;
    Object.assign(r, { state, finishedAt: this.ctx.now.toISOString(), message });
    this.effects.push({ type: 'log', level: 'info', message: `policy run finished: ${message}`, fields: { state } });
    const severity = bad > 0 ? 'error' : skipped > 0 || vms.length === 0 ? 'warning' : 'normal';
    this.effects.push({ type: 'event', severity, description: `olvm-backup policy "${r.policyName}" (${r.trigger} run) finished: ${message}` });
  }

  /** A VM's outcome that the backup runner does not report: recorded and posted as an event. */
  private settle(vm: StoredRunVm, state: PolicyRunVmState, reason: string, linkVm = true): void {
    Object.assign(vm, { state, reason, finishedAt: this.ctx.now.toISOString() });
    const verb = state === 'failed' ? 'failed' : state === 'cancelled' ? 'was cancelled' : 'was skipped';
    this.effects.push({
      type: 'event',
      severity: state === 'failed' ? 'error' : 'warning',
      ...(linkVm ? { vmId: vm.vmId } : {}),
      description: `olvm-backup policy "${this.policyName()}": backup of vm ${vm.vmName} ${verb}: ${reason}`,
    });
  }

  private policyName(): string {
    return this.ctx.policy?.name ?? this.s.run.policyName;
  }
}
