import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import type { QmpEvent } from './events';
import type { QmpSession } from './session';

export type JobOutcome = { kind: 'completed' } | { kind: 'failed'; error: string } | { kind: 'cancelled' };

/**
 * Follows one block job by its explicit `job-id` (7.2 rejects an empty default id under
 * -blockdev). Created BEFORE the command that starts the job: QEMU may emit the job's first
 * events before the command's reply. Success and failure both end in BLOCK_JOB_COMPLETED; only
 * its `error` field tells them apart. `paused` is the normal drained flip, not a failure.
 */
export class BlockJob {
  private lastStatus = 'unknown';
  private outcome: JobOutcome | undefined;
  private gone = false;
  private readonly waiters = new Set<() => void>();
  private readonly off: () => void;
  private readonly offClose: () => void;

  private constructor(private readonly session: QmpSession, readonly id: string) {
    this.off = session.onEvent((e) => this.onEvent(e));
    this.offClose = session.onClose(() => this.notify());
  }

  static watch(session: QmpSession, id: string): BlockJob {
    return new BlockJob(session, id);
  }

  get status(): string {
    return this.lastStatus;
  }

  get result(): JobOutcome | undefined {
    return this.outcome;
  }

  /** Waits until the job completed, failed or was cancelled. */
  async waitFinished(opts: { timeoutMs: number; signal?: AbortSignal }): Promise<JobOutcome> {
    await this.waitUntil(() => this.outcome !== undefined, `end of block job ${this.id}`, opts);
    return this.outcome as JobOutcome;
  }

  /** Waits until the job left QEMU's job list (status null), so its nodes are free. */
  async waitGone(opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    await this.waitUntil(() => this.gone, `removal of block job ${this.id}`, opts);
  }

  /**
   * Cancels the job and waits until QEMU has dropped it. A job that already ended or is
   * unknown to QEMU counts as cancelled: cancel is used in cleanup paths.
   */
  async cancel(opts: { timeoutMs: number }): Promise<void> {
    if (!this.gone) {
      const jobs = await this.session.execute('query-jobs', {});
      const job = jobs.find((j) => j.id === this.id);
      if (!job) {
        this.gone = true;
      } else if (job.status === 'concluded') {
        await this.session.execute('job-dismiss', { id: this.id });
      } else if (job.status !== 'null') {
        await this.session.execute('job-cancel', { id: this.id });
      }
    }
    await this.waitGoneOrPoll(opts.timeoutMs);
  }

  async dismiss(): Promise<void> {
    await this.session.execute('job-dismiss', { id: this.id });
  }

  dispose(): void {
    this.off();
    this.offClose();
  }

  private async waitGoneOrPoll(timeoutMs: number): Promise<void> {
    // Events are the fast path; a poll of query-jobs covers a job whose events we missed.
    const deadline = Date.now() + timeoutMs;
    while (!this.gone) {
      const left = deadline - Date.now();
      if (left <= 0) throw new AppError('QMP_TIMEOUT', `block job ${this.id} still present after ${timeoutMs} ms`);
      try {
        await this.waitGone({ timeoutMs: Math.min(500, left) });
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'QMP_TIMEOUT')) throw err;
        const jobs = await this.session.execute('query-jobs', {});
        const job = jobs.find((j) => j.id === this.id);
        if (!job) this.gone = true;
        else if (job.status === 'concluded') await this.session.execute('job-dismiss', { id: this.id });
      }
    }
  }

  private async waitUntil(cond: () => boolean, what: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    if (cond()) return;
    await withTimeout(
      `waiting for ${what}`,
      opts.timeoutMs,
      opts.signal,
      (signal) =>
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (cond()) {
              finish();
              resolve();
            } else if (this.session.closed) {
              finish();
              reject(new AppError('QMP_DISCONNECTED', `qmp closed while ${what} was awaited`));
            }
          };
          const finish = (): void => {
            this.waiters.delete(check);
            signal.removeEventListener('abort', finish);
          };
          signal.addEventListener('abort', finish, { once: true });
          this.waiters.add(check);
          check();
        }),
      { timeout: 'QMP_TIMEOUT', aborted: 'QMP_ABORTED' },
    );
  }

  private onEvent(e: QmpEvent): void {
    const d = e.data;
    switch (e.event) {
      case 'JOB_STATUS_CHANGE':
        if (d['id'] !== this.id) return;
        this.lastStatus = String(d['status']);
        if (this.lastStatus === 'null') this.gone = true;
        break;
      case 'BLOCK_JOB_COMPLETED':
        if (d['device'] !== this.id) return;
        this.outcome = typeof d['error'] === 'string' ? { kind: 'failed', error: d['error'] } : { kind: 'completed' };
        break;
      case 'BLOCK_JOB_CANCELLED':
        if (d['device'] !== this.id) return;
        this.outcome = { kind: 'cancelled' };
        break;
      default:
        return;
    }
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
