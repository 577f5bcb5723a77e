import { AppError } from '../errors';
import { GFS_RULES, type GfsRule } from './model';

/**
 * Grandfather-father-son retention as a pure function: which restore points a set of rules
 * keeps, and which rule(s) kept each one.
 *
 * Semantics (those of restic `forget --keep-*` up to 0.15 and borg `prune` 1.1, without the
 * later "also keep the oldest point while a rule has counts left" extension):
 *
 * - Points are taken newest first (ties on time: the larger id counts as newer, so the result
 *   does not depend on input order).
 * - `keepLast: n` keeps the n newest points.
 * - `daily: n` keeps, for each of the n most recent calendar days that have at least one point,
 *   the newest point of that day. `weekly` (ISO 8601 weeks, Monday to Sunday, week-numbering
 *   year: 2020-W53, 2026-W01 starting on Monday 2025-12-29), `monthly` and `yearly` likewise.
 *   Days without points do not count: "daily 7" keeps 7 points even across a 2-week gap.
 * - Each rule counts on its own; a point kept by several rules lists them all and uses one slot
 *   of each. A point no rule keeps is removed.
 * - Calendar days, weeks, months and years are those of the given IANA time zone, from
 *   `Intl.DateTimeFormat`: a 23- or 25-hour DST day is one day, midnight is local midnight.
 * - A count of `Infinity` keeps every period; 0 or absent disables the rule.
 */
export interface GfsRules {
  keepLast?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export { GFS_RULES, type GfsRule } from './model';

const RULE_FIELD: Record<GfsRule, keyof GfsRules> = {
  last: 'keepLast',
  daily: 'daily',
  weekly: 'weekly',
  monthly: 'monthly',
  yearly: 'yearly',
};

export interface GfsPoint {
  id: string;
  time: Date;
}

/** The local calendar periods of one instant in one time zone. */
export interface LocalPeriods {
  /** `YYYY-MM-DD` */
  day: string;
  /** ISO week, `GGGG-Www` (week-numbering year) */
  week: string;
  /** `YYYY-MM` */
  month: string;
  /** `YYYY` */
  year: string;
}

export interface GfsDecision {
  id: string;
  time: Date;
  keep: boolean;
  /** Rules that kept the point, in GFS_RULES order; empty when it is removed. */
  keptBy: GfsRule[];
  periods: LocalPeriods;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', era: 'short' });
    } catch (err) {
      throw new AppError('INVALID_ARGUMENT', `time zone ${JSON.stringify(timeZone)} is not a valid IANA zone name`, { cause: err });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws INVALID_ARGUMENT unless `timeZone` is a zone name this runtime knows. */
export function checkTimeZone(timeZone: string): void {
  if (typeof timeZone !== 'string' || timeZone === '') throw new AppError('INVALID_ARGUMENT', 'time zone is empty');
  formatter(timeZone);
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Local calendar date (proleptic Gregorian) of `time` in `timeZone`. */
export function localDate(time: Date, timeZone: string): { year: number; month: number; day: number } {
  const parts = formatter(timeZone).formatToParts(time);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  const era = parts.find((p) => p.type === 'era')?.value;
  const y = get('year');
  const year = era === 'BC' || era === 'B' ? 1 - y : y;
  return { year, month: get('month'), day: get('day') };
}

/** ISO 8601 week of a calendar date: the week (Monday first) and the year its Thursday is in. */
export function isoWeek(year: number, month: number, day: number): { weekYear: number; week: number } {
  const DAY = 86_400_000;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  const t = date.getTime();
  const dow = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(t + (3 - dow) * DAY);
  const weekYear = thursday.getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(weekYear, 0, 1);
  const week = Math.floor((thursday.getTime() - jan1.getTime()) / DAY / 7) + 1;
  return { weekYear, week };
}

export function localPeriods(time: Date, timeZone: string): LocalPeriods {
  const { year, month, day } = localDate(time, timeZone);
  const { weekYear, week } = isoWeek(year, month, day);
  const y = pad(year, 4);
  return { day: `${y}-${pad(month, 2)}-${pad(day, 2)}`, week: `${pad(weekYear, 4)}-W${pad(week, 2)}`, month: `${y}-${pad(month, 2)}`, year: y };
}

/** INVALID_ARGUMENT for a negative or fractional count; returns each rule's count (0 = off). */
export function normalizeRules(rules: GfsRules): Record<GfsRule, number> {
  if (typeof rules !== 'object' || rules === null) throw new AppError('INVALID_ARGUMENT', 'retention rules must be an object');
  const out = {} as Record<GfsRule, number>;
  for (const rule of GFS_RULES) {
    const v = rules[RULE_FIELD[rule]] ?? 0;
    if (typeof v !== 'number' || !(v === Infinity || (Number.isSafeInteger(v) && v >= 0))) {
      throw new AppError('INVALID_ARGUMENT', `retention rule ${RULE_FIELD[rule]} must be a whole number >= 0 (got ${JSON.stringify(v)})`);
    }
    out[rule] = v;
  }
  return out;
}

/** True if the rules keep at least one point of a non-empty set. */
export function rulesKeepSomething(rules: GfsRules): boolean {
  const n = normalizeRules(rules);
  return GFS_RULES.some((r) => n[r] > 0);
}

function compareNewestFirst(a: GfsPoint, b: GfsPoint): number {
  const d = b.time.getTime() - a.time.getTime();
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Applies `rules` to `points` (any order). Returns one decision per point, newest first.
 * INVALID_ARGUMENT for an invalid date, a duplicate id, bad counts or an unknown time zone.
 */
export function gfsPrune(points: readonly GfsPoint[], rules: GfsRules, opts: { timeZone: string }): GfsDecision[] {
  const counts = normalizeRules(rules);
  checkTimeZone(opts.timeZone);
  const seen = new Set<string>();
  for (const p of points) {
    if (!(p.time instanceof Date) || Number.isNaN(p.time.getTime())) throw new AppError('INVALID_ARGUMENT', `point ${p.id}: invalid time`);
    if (seen.has(p.id)) throw new AppError('INVALID_ARGUMENT', `point ${p.id} is listed twice`);
    seen.add(p.id);
  }
  const sorted = [...points].sort(compareNewestFirst);
  const remaining = { ...counts };
  const lastPeriod = new Map<GfsRule, string>();
  return sorted.map((p) => {
    const periods = localPeriods(p.time, opts.timeZone);
    const keptBy: GfsRule[] = [];
    for (const rule of GFS_RULES) {
      if (remaining[rule] <= 0) continue;
      const period = rule === 'last' ? `point:${p.id}` : rule === 'daily' ? periods.day : rule === 'weekly' ? periods.week : rule === 'monthly' ? periods.month : periods.year;
      if (lastPeriod.get(rule) === period) continue;
      lastPeriod.set(rule, period);
      remaining[rule] -= 1;
      keptBy.push(rule);
    }
    return { id: p.id, time: p.time, keep: keptBy.length > 0, keptBy, periods };
  });
}
