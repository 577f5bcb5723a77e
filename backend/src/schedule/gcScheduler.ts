/**
 * The repository's scheduled garbage collection (repository.gcSchedule, weekly and off-peak by
 * default), so chunks no point uses any more go without an operator remembering `olvm-backup gc`.
 * The watermark is the repository's own audit log — its last `gc` record, whoever ran it (the
 * CLI's count too): a fire time missed while the service was down runs once at start-up, and a
 * collection run by hand since the fire time makes another one unnecessary. A failure is logged
 * and posted to the engine's event log; the next fire time tries again. The collection itself is
 * safe while backups write (FORMAT.md §14).
 */
import type { NewEvent } from '../engine';
import { AppError, describeError } from '../errors';
import type { GcReport } from '../repository';
import type { Logger } from '../util/log';
import { BackgroundWork } from './background';
import { checkCron, isTimeZone, localTime } from './cron';
import { dueFire, nextFire } from './plan';

export interface GcSchedulerDeps {
  repository: { gc(opts: { actor: string }): Promise<GcReport> };
  /** When the repository was last collected (its audit log's newest `gc` record), if ever. */
  lastGc(): Date | null;
  engine: { addEvent(ev: NewEvent): Promise<unknown> };
  schedule: string;
  timeZone: string;
  log: Logger;
  clock?: () => Date;
  maxSleepMs?: number;
}

export const GC_SCHEDULER_ACTOR = 'service:gc-schedule';

export class GcScheduler {
  private readonly clock: () => Date;
  private readonly work: BackgroundWork;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** What this process has run (the audit log is read again after each collection). */
  private firedThrough: Date;

  /** CONFIG_INVALID naming the key for a bad schedule or time zone. */
  constructor(private readonly d: GcSchedulerDeps) {
    const why = checkCron(d.schedule);
    if (why) throw new AppError('CONFIG_INVALID', `repository.gcSchedule: "${d.schedule}" ${why} (or "off")`);
    if (!isTimeZone(d.timeZone)) throw new AppError('CONFIG_INVALID', `repository.gcTimeZone: "${d.timeZone}" is not an IANA time zone (e.g. "Europe/Berlin", "UTC")`);
    this.clock = d.clock ?? (() => new Date());
    this.work = new BackgroundWork(d.engine, d.log);
    // never collected: nothing is owed from before this start (a new install waits for its
    // first fire time rather than collecting an empty repository at once)
    this.firedThrough = d.lastGc() ?? this.clock();
  }

  start(): void {
    if (this.stopped) return;
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.work.idle();
  }

  /** For tests: settles when the collection started so far is done. */
  async idle(): Promise<void> {
    await this.running;
    await this.work.idle();
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.clock();
    const spec = { schedule: this.d.schedule, timeZone: this.d.timeZone };
    const last = this.d.lastGc();
    if (last && last > this.firedThrough) this.firedThrough = last;
    const due = this.running ? null : dueFire(spec, this.firedThrough, now);
    if (due) this.collect(due.fireAt);
    const next = nextFire(spec, new Date(Math.max(now.getTime(), this.firedThrough.getTime())));
    const wake = Math.min(next ? next.getTime() : Infinity, now.getTime() + (this.d.maxSleepMs ?? 60 * 60_000));
    // a little after the instant, so the cron library sees it as past
    this.timer = setTimeout(() => this.tick(), Math.max(50, wake - now.getTime() + 50));
    this.timer.unref();
  }

  private collect(fireAt: Date): void {
    this.firedThrough = fireAt;
    const when = localTime(fireAt, this.d.timeZone);
    this.running = (async () => {
      try {
        const r = await this.d.repository.gc({ actor: GC_SCHEDULER_ACTOR });
        this.d.log.info({ fireAt: fireAt.toISOString(), chunksRemoved: r.chunksRemoved, bytesRemoved: r.bytesRemoved }, 'scheduled garbage collection done');
      } catch (err) {
        this.d.log.error({ fireAt: fireAt.toISOString(), err: describeError(err) }, 'scheduled garbage collection failed');
        this.work.event({ severity: 'error', description: `olvm-backup: the garbage collection due at ${when} failed: ${describeError(err)}; the next one tries again` });
      }
    })().finally(() => (this.running = undefined));
  }
}
