import type { PolicyRunTrigger, PolicyWindow } from './model';
import { CronSchedule } from './cron';

/** The scheduling decisions, as pure functions of the policy, the watermark and the time. */

/** At most this many missed fire times are counted one by one (a minutely policy down for a
 *  month would otherwise walk 40,000 fire times): the count means "at least" at the cap. */
export const MISSED_COUNT_CAP = 200;

export interface DueFire {
  /** The fire time to run now: the latest one at or before `now`. */
  fireAt: Date;
  /** Fire times after the watermark and before `fireAt`: missed, not run (one run catches up). */
  missed: number;
}

/**
 * The fire time a policy owes at `now`, if any: the latest one at or before `now` and after the
 * watermark `firedThrough` (every fire time up to it was handled). Several missed fire times give
 * one run (the latest) and a count of the others.
 */
export function dueFire(p: { schedule: string; timeZone: string }, firedThrough: Date, now: Date): DueFire | null {
  const cron = new CronSchedule(p.schedule, p.timeZone);
  const latest = cron.latestAtOrBefore(now);
  if (!latest || latest.getTime() <= firedThrough.getTime()) return null;
  let missed = 0;
  for (let t = cron.next(firedThrough); t && t.getTime() < latest.getTime() && missed < MISSED_COUNT_CAP; t = cron.next(t)) missed++;
  return { fireAt: latest, missed };
}

/** A fire time from before the scheduler started was missed while the service was down. */
export function triggerFor(fireAt: Date, schedulerStartedAt: Date): Extract<PolicyRunTrigger, 'schedule' | 'catch-up'> {
  return fireAt.getTime() < schedulerStartedAt.getTime() ? 'catch-up' : 'schedule';
}

/** When the policy fires next after `after` (for timers and the list's "next run"). */
export function nextFire(p: { schedule: string; timeZone: string }, after: Date): Date | null {
  return new CronSchedule(p.schedule, p.timeZone).next(after);
}

export interface WindowSpan {
  start: Date;
  end: Date;
}

/**
 * The backup window a run started at `at` uses. Without `startMinutes` it opens at `at`; with it,
 * the daily window (in the policy's time zone, DST-aware) that contains `at`, or else the next
 * one to open (children wait for it).
 */
export function runWindow(window: PolicyWindow | null, timeZone: string, at: Date): WindowSpan | null {
  if (!window) return null;
  const dur = window.durationMinutes * 60_000;
  if (window.startMinutes === undefined) return { start: at, end: new Date(at.getTime() + dur) };
  const h = Math.floor(window.startMinutes / 60);
  const m = window.startMinutes % 60;
  const opens = new CronSchedule(`${m} ${h} * * *`, timeZone);
  const prev = opens.latestAtOrBefore(at);
  if (prev && at.getTime() < prev.getTime() + dur) return { start: prev, end: new Date(prev.getTime() + dur) };
  const next = opens.next(at) ?? at;
  return { start: next, end: new Date(next.getTime() + dur) };
}

/** wait: before the window opens; open: children may start; closed: the rest is skipped. */
export function windowState(span: { start: string | null; end: string | null }, now: Date): 'wait' | 'open' | 'closed' {
  if (span.end !== null && now.getTime() >= Date.parse(span.end)) return 'closed';
  if (span.start !== null && now.getTime() < Date.parse(span.start)) return 'wait';
  return 'open';
}

/** How many more children a run may submit now under its concurrency cap. */
export function freeSlots(concurrency: number, inFlight: number): number {
  return Math.max(0, concurrency - inFlight);
}
