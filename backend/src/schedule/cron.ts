import { Cron } from 'croner';

/**
 * A policy's schedule: a classic 5-field cron expression (minute hour day-of-month month
 * day-of-week, Vixie semantics: day-of-month OR day-of-week when both are restricted) read in
 * an IANA time zone. Fire times are computed by croner, which handles DST: a wall-clock time
 * that does not exist (spring forward) fires at the next valid minute, a repeated one (fall
 * back) fires once.
 */
export class CronSchedule {
  private readonly cron: Cron;

  /** Throws Error with croner's own words on a bad expression or time zone (see checkCron). */
  constructor(
    readonly expression: string,
    readonly timeZone: string,
  ) {
    this.cron = new Cron(expression, { timezone: timeZone, mode: '5-part', paused: true, legacyMode: true });
  }

  /** The first fire time strictly after `after`; null if there is none (never, for 5 fields). */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }

  /** The next `n` distinct fire times strictly after `after`. (croner's own nextRuns can list an
   *  instant twice when a wall-clock time skipped by DST maps onto the next hour's.) */
  nextRuns(n: number, after: Date): Date[] {
    const out: Date[] = [];
    for (let t = this.next(after); t && out.length < n; t = this.next(t)) out.push(t);
    return out;
  }

  /** The last fire time at or before `at`; null if none in croner's search range. */
  latestAtOrBefore(at: Date): Date | null {
    // previousRuns is strict: ask from just after `at`
    const [d] = this.cron.previousRuns(1, new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000));
    return d ?? null;
  }
}

/** undefined when the expression is a valid 5-field cron; else why not (one sentence). */
export function checkCron(expression: string): string | undefined {
  if (expression.trim().split(/\s+/).length !== 5) return 'must be a 5-field cron expression (minute hour day-of-month month day-of-week)';
  try {
    const c = new CronSchedule(expression, 'UTC');
    if (c.next(new Date(0)) === null) return 'never fires';
    return undefined;
  } catch (err) {
    return `is not a valid cron expression: ${(err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/, '')}`;
  }
}

/** Whether `tz` is an IANA time zone name this runtime knows. */
export function isTimeZone(tz: string): boolean {
  if (tz.trim() === '' || tz !== tz.trim()) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The next `n` fire times after `from` (the preview the API and the UI show). */
export function nextRuns(expression: string, timeZone: string, from: Date, n = 5): Date[] {
  return new CronSchedule(expression, timeZone).nextRuns(n, from);
}

/** `2026-03-29 03:30 CEST` style rendering of an instant in a time zone. */
export function localTime(d: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(d);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${get('timeZoneName')}`;
}
