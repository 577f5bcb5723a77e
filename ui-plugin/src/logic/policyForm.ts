/**
 * The policy dialog's form and its mapping to and from the API's PolicyInput, the human texts
 * of the Policies tab (schedule, retention, selection), the mapping of the service's validation
 * messages (`request body.schedule: …`) to form fields, and the dashboard's VMs in no policy.
 * Pure: no DOM, no React.
 */
import type { ConsistencyMode, PolicyBootCheck, PolicyInput, PolicyRunState, PolicySelection, RetentionRules, VmSummary } from '../../../backend/src/api/contract';
import type { Translate } from '../intl/messages';
import type { MethodChoice } from './backupChoices';

export type SelectionKind = 'vms' | 'tag' | 'search';

/** Text inputs stay text: what the admin typed is sent, and the service says what is wrong. */
export interface PolicyForm {
  name: string;
  schedule: string;
  timeZone: string;
  selectionKind: SelectionKind;
  vmIds: string[];
  tag: string;
  search: string;
  keepLast: string;
  daily: string;
  weekly: string;
  monthly: string;
  yearly: string;
  lockDays: string;
  concurrency: string;
  windowEnabled: boolean;
  /** `HH:MM` in the policy's zone; empty: the window opens at each fire time. */
  windowStart: string;
  windowDurationMinutes: string;
  enabled: boolean;
  /** auto: freeze the guest's filesystems when its agent answers (else crash-consistent);
   *  filesystem: a backup that cannot freeze them fails; crash: never freeze. */
  consistency: ConsistencyMode;
  /** How its backups read the VMs; '': the service's default (nothing is sent). */
  method: MethodChoice;
  /** Cron of the scheduled verify; empty: verify on demand only. */
  verifySchedule: string;
  /** newest-weekly: each VM's newest point boot-checked weekly; off: on demand only. */
  bootCheck: PolicyBootCheck;
}

export type PolicyField = Exclude<keyof PolicyForm, 'selectionKind' | 'windowEnabled'> | 'selection' | 'window' | 'retention';

export function emptyPolicyForm(timeZone: string): PolicyForm {
  return {
    name: '',
    schedule: '0 2 * * *',
    timeZone,
    selectionKind: 'tag',
    vmIds: [],
    tag: '',
    search: '',
    keepLast: '7',
    daily: '7',
    weekly: '4',
    monthly: '12',
    yearly: '0',
    lockDays: '0',
    concurrency: '2',
    windowEnabled: false,
    windowStart: '',
    windowDurationMinutes: '240',
    enabled: true,
    consistency: 'auto',
    method: '',
    verifySchedule: '',
    bootCheck: 'off',
  };
}

/**
 * The form as a user who is not a backup admin may send it: chosen VMs, retention that keeps
 * every point, no lock of its own (the service refuses anything else with 403).
 */
export function restrictedPolicyForm(f: PolicyForm): PolicyForm {
  return { ...f, selectionKind: 'vms', keepLast: '0', daily: '0', weekly: '0', monthly: '0', yearly: '0', lockDays: '0' };
}

function hhmm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

export function policyToForm(p: PolicyInput): PolicyForm {
  const sel = p.selection;
  return {
    name: p.name,
    schedule: p.schedule,
    timeZone: p.timeZone,
    selectionKind: 'vmIds' in sel ? 'vms' : 'tag' in sel ? 'tag' : 'search',
    vmIds: 'vmIds' in sel ? [...sel.vmIds] : [],
    tag: 'tag' in sel ? sel.tag : '',
    search: 'search' in sel ? sel.search : '',
    keepLast: String(p.retention.keepLast),
    daily: String(p.retention.daily),
    weekly: String(p.retention.weekly),
    monthly: String(p.retention.monthly),
    yearly: String(p.retention.yearly),
    lockDays: String(p.lockDays),
    concurrency: String(p.concurrency),
    windowEnabled: p.window !== null,
    windowStart: p.window?.startMinutes !== undefined ? hhmm(p.window.startMinutes) : '',
    windowDurationMinutes: p.window ? String(p.window.durationMinutes) : '240',
    enabled: p.enabled,
    // policies stored before these settings existed: auto, and the service's default method
    consistency: p.consistency ?? 'auto',
    method: p.method ?? '',
    verifySchedule: p.verifySchedule ?? '',
    bootCheck: p.bootCheck ?? 'off',
  };
}

/** '' → the fallback; anything else → a number (NaN goes out as null and the service names the field). */
function num(s: string, fallback: number): number {
  const v = s.trim();
  return v === '' ? fallback : Number(v);
}

/** `HH:MM` → minutes after midnight; NaN when it is not a time (the service refuses it by field). */
export function minutesOf(s: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(s.trim());
  if (!m) return Number.NaN;
  const h = Number(m[1]);
  const min = Number(m[2]);
  return h < 24 && min < 60 ? h * 60 + min : Number.NaN;
}

export function formToPolicy(f: PolicyForm): PolicyInput {
  const selection: PolicySelection = f.selectionKind === 'vms' ? { vmIds: [...f.vmIds] } : f.selectionKind === 'tag' ? { tag: f.tag.trim() } : { search: f.search.trim() };
  const retention: RetentionRules = { keepLast: num(f.keepLast, 0), daily: num(f.daily, 0), weekly: num(f.weekly, 0), monthly: num(f.monthly, 0), yearly: num(f.yearly, 0) };
  const start = f.windowStart.trim();
  return {
    name: f.name.trim(),
    schedule: f.schedule.trim(),
    timeZone: f.timeZone,
    selection,
    retention,
    lockDays: num(f.lockDays, 0),
    concurrency: num(f.concurrency, 2),
    window: f.windowEnabled ? { ...(start ? { startMinutes: minutesOf(start) } : {}), durationMinutes: num(f.windowDurationMinutes, 0) } : null,
    enabled: f.enabled,
    consistency: f.consistency,
    ...(f.method ? { method: f.method } : {}),
    ...(f.verifySchedule.trim() ? { verifySchedule: f.verifySchedule.trim() } : {}),
    ...(f.bootCheck !== 'off' ? { bootCheck: f.bootCheck } : {}),
  };
}

const FIELD_OF_PATH: Record<string, PolicyField> = {
  name: 'name',
  schedule: 'schedule',
  timeZone: 'timeZone',
  selection: 'selection',
  'selection.vmIds': 'vmIds',
  'selection.tag': 'tag',
  'selection.search': 'search',
  retention: 'retention',
  'retention.keepLast': 'keepLast',
  'retention.daily': 'daily',
  'retention.weekly': 'weekly',
  'retention.monthly': 'monthly',
  'retention.yearly': 'yearly',
  lockDays: 'lockDays',
  concurrency: 'concurrency',
  window: 'window',
  'window.startMinutes': 'windowStart',
  'window.durationMinutes': 'windowDurationMinutes',
  enabled: 'enabled',
  consistency: 'consistency',
  method: 'method',
  verifySchedule: 'verifySchedule',
  bootCheck: 'bootCheck',
};

/**
 * The form field a validation message of the service names (`request body.schedule: …`,
 * `request body.selection.vmIds.0: vm … not found`) and the message without its path; null
 * when it names no field of the form (it is then shown above the form).
 */
export function fieldError(message: string): { field: PolicyField; message: string } | null {
  const m = /^request body\.([A-Za-z0-9_.]+): ([\s\S]*)$/.exec(message);
  if (!m || !m[1] || m[2] === undefined) return null;
  const parts = m[1].split('.');
  while (parts.length > 0) {
    const field = FIELD_OF_PATH[parts.join('.')];
    if (field) return { field, message: m[2] };
    parts.pop();
  }
  return null;
}

const DAY_NAMES_REF = Date.UTC(2023, 0, 1); // a Sunday

function weekdayName(d: number, locale: string): string {
  const date = new Date(DAY_NAMES_REF + (d % 7) * 86_400_000);
  try {
    return new Intl.DateTimeFormat(locale, { weekday: 'long', timeZone: 'UTC' }).format(date);
  } catch {
    return new Intl.DateTimeFormat('en-US', { weekday: 'long', timeZone: 'UTC' }).format(date);
  }
}

/** `1-5`, `1,3,5`, `0`: the days, or null when the field is anything else. */
function daysOf(field: string): number[] | null {
  const out: number[] = [];
  for (const part of field.split(',')) {
    const range = /^(\d)-(\d)$/.exec(part);
    if (range) {
      const a = Number(range[1]);
      const b = Number(range[2]);
      if (a > b || b > 7) return null;
      for (let d = a; d <= b; d++) out.push(d % 7);
    } else if (/^\d$/.test(part) && Number(part) <= 7) out.push(Number(part) % 7);
    else return null;
  }
  return [...new Set(out)].sort((x, y) => ((x + 6) % 7) - ((y + 6) % 7));
}

const INT = /^\d{1,2}$/;

/**
 * A sentence for the common 5-field cron shapes ("Every day at 02:00", "Every Monday, Friday at
 * 23:30", "Every 15 minutes"); null for any other expression (the page then shows it as it is —
 * the service is the judge of its syntax).
 */
export function cronText(expr: string, t: Translate, locale = 'en-US'): string | null {
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) return null;
  const [min, hour, dom, mon, dow] = f as [string, string, string, string, string];
  if (mon !== '*') return null;
  const step = (s: string): number | null => {
    const m = /^\*\/(\d{1,2})$/.exec(s);
    return m ? Number(m[1]) : null;
  };
  if (dom === '*' && dow === '*') {
    if (min === '*' && hour === '*') return t('cronEveryMinute');
    const everyMin = step(min);
    if (everyMin !== null && hour === '*') return t('cronEveryMinutes', { n: everyMin });
    if (INT.test(min) && Number(min) < 60) {
      if (hour === '*') return t('cronHourly', { minute: Number(min) });
      const everyHour = step(hour);
      if (everyHour !== null) return t('cronEveryHours', { n: everyHour, minute: Number(min) });
      if (INT.test(hour) && Number(hour) < 24) return t('cronDaily', { time: hhmm(Number(hour) * 60 + Number(min)) });
    }
    return null;
  }
  if (!INT.test(min) || !INT.test(hour) || Number(min) >= 60 || Number(hour) >= 24) return null;
  const time = hhmm(Number(hour) * 60 + Number(min));
  if (dom === '*') {
    const days = daysOf(dow);
    if (!days || days.length === 0) return null;
    if (days.length === 7) return t('cronDaily', { time });
    return t('cronWeekly', { days: days.map((d) => weekdayName(d, locale)).join(', '), time });
  }
  if (dow === '*' && INT.test(dom) && Number(dom) >= 1 && Number(dom) <= 31) return t('cronMonthly', { day: Number(dom), time });
  return null;
}

/** "last 7 · 7 daily · 4 weekly · 12 monthly"; zero rules are left out; all zero: keep everything. */
export function retentionSummary(r: RetentionRules, t: Translate): string {
  const parts: string[] = [];
  if (r.keepLast > 0) parts.push(t('retentionLast', { n: r.keepLast }));
  if (r.daily > 0) parts.push(t('retentionDaily', { n: r.daily }));
  if (r.weekly > 0) parts.push(t('retentionWeekly', { n: r.weekly }));
  if (r.monthly > 0) parts.push(t('retentionMonthly', { n: r.monthly }));
  if (r.yearly > 0) parts.push(t('retentionYearly', { n: r.yearly }));
  return parts.length === 0 ? t('retentionAll') : parts.join(' · ');
}

/** "Tag daily", "Search: cluster=prod", "web01, db01" (ids the caller cannot name stay ids). */
export function selectionText(sel: PolicySelection, vms: Array<Pick<VmSummary, 'id' | 'name'>>, t: Translate): string {
  if ('tag' in sel) return t('selectionTag', { tag: sel.tag });
  if ('search' in sel) return t('selectionSearch', { search: sel.search });
  const names = new Map(vms.map((v) => [v.id.toLowerCase(), v.name]));
  return t('selectionVms', { vms: sel.vmIds.map((id) => names.get(id.toLowerCase()) ?? id).join(', ') });
}

/** VMs that no enabled policy selects, by name: the dashboard flags them. */
export function vmsInNoPolicy<T extends Pick<VmSummary, 'name' | 'policies'>>(vms: T[]): T[] {
  return vms.filter((v) => v.policies.length === 0).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

export function isRunActive(state: PolicyRunState): boolean {
  return state === 'resolving' || state === 'running';
}

/** Whether a point is still under its retention lock at `now`. */
export function isLocked(lockedUntil: string | null, now: number): boolean {
  if (!lockedUntil) return false;
  const t = Date.parse(lockedUntil);
  return Number.isFinite(t) && t > now;
}

/** The browser's IANA zone (the admin's), UTC when the browser does not say. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** IANA zones for the select, with `current` and UTC always present. */
export function timeZones(current: string): string[] {
  let list: string[] = [];
  try {
    const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
    list = intl.supportedValuesOf ? intl.supportedValuesOf('timeZone') : [];
  } catch {
    list = [];
  }
  const set = new Set(list);
  set.add('UTC');
  if (current) set.add(current);
  return [...set].sort();
}
