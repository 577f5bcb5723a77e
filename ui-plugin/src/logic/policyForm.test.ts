// Unit tests of the policy form's mapping, schedule and retention texts, and field errors.
import type { PolicyInput } from '../../../backend/src/api/contract';
import { messagesFor, translator } from '../intl/messages';
import { cronText, emptyPolicyForm, fieldError, formToPolicy, isLocked, minutesOf, policyToForm, retentionSummary, selectionText, timeZones, vmsInNoPolicy } from './policyForm';
import { makeVm } from './testJobs';

const t = translator(messagesFor('en-US'));

const policy: PolicyInput = {
  name: 'nightly',
  schedule: '30 1 * * *',
  timeZone: 'Europe/Berlin',
  selection: { tag: 'daily' },
  retention: { keepLast: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2 },
  lockDays: 14,
  concurrency: 3,
  window: { startMinutes: 22 * 60 + 5, durationMinutes: 300 },
  enabled: true,
  consistency: 'filesystem',
  method: 'engine',
  verifySchedule: '0 4 * * 0',
};

/** The policy without one of its optional fields (as stored before the field existed). */
function without(p: PolicyInput, key: 'verifySchedule' | 'consistency' | 'method'): PolicyInput {
  const copy = { ...p };
  delete copy[key];
  return copy;
}

describe('policy form ↔ body', () => {
  it('round-trips every field of a policy', () => {
    expect(formToPolicy(policyToForm(policy))).toEqual(policy);
    // no verify schedule: the field is left out, not sent empty
    const onDemand = without(policy, 'verifySchedule');
    expect(policyToForm(onDemand).verifySchedule).toBe('');
    expect(Object.keys(formToPolicy(policyToForm(onDemand)))).not.toContain('verifySchedule');
    expect(fieldError('request body.verifySchedule: must be a 5-field cron expression')).toEqual({ field: 'verifySchedule', message: 'must be a 5-field cron expression' });
    // the weekly boot check goes out only when asked for, and comes back into the form
    expect(policyToForm(onDemand).bootCheck).toBe('off');
    expect(Object.keys(formToPolicy(policyToForm(onDemand)))).not.toContain('bootCheck');
    expect(formToPolicy({ ...policyToForm(onDemand), bootCheck: 'newest-weekly' }).bootCheck).toBe('newest-weekly');
    expect(policyToForm({ ...onDemand, bootCheck: 'newest-weekly' }).bootCheck).toBe('newest-weekly');
    expect(fieldError('request body.bootCheck: must be off or newest-weekly')).toEqual({ field: 'bootCheck', message: 'must be off or newest-weekly' });
    const byVms: PolicyInput = { ...policy, selection: { vmIds: ['a', 'b'] }, window: null, enabled: false, consistency: 'crash' };
    expect(formToPolicy(policyToForm(byVms))).toEqual(byVms);
    const bySearch: PolicyInput = { ...policy, selection: { search: 'cluster=prod and status=up' }, window: { durationMinutes: 60 } };
    expect(formToPolicy(policyToForm(bySearch))).toEqual(bySearch);
    const byQmp: PolicyInput = { ...policy, consistency: 'auto', method: 'qmp' };
    expect(formToPolicy(policyToForm(byQmp))).toEqual(byQmp);
    // a policy stored before the settings existed: auto, and the service's default method (not sent)
    const older = without(without(policy, 'consistency'), 'method');
    expect([policyToForm(older).consistency, policyToForm(older).method]).toEqual(['auto', '']);
    expect(formToPolicy(policyToForm(older))).toEqual({ ...older, consistency: 'auto' });
    expect(Object.keys(formToPolicy(policyToForm(older)))).not.toContain('method');
    expect(fieldError('request body.method: must be one of auto, qmp, engine')).toEqual({ field: 'method', message: 'must be one of auto, qmp, engine' });
  });

  it('sends only the chosen kind of selection, trimmed', () => {
    const f = { ...emptyPolicyForm('UTC'), name: ' n ', tag: ' daily ', search: 'x', vmIds: ['v'] };
    expect(formToPolicy(f).selection).toEqual({ tag: 'daily' });
    expect(formToPolicy({ ...f, selectionKind: 'search' }).selection).toEqual({ search: 'x' });
    expect(formToPolicy({ ...f, selectionKind: 'vms' }).selection).toEqual({ vmIds: ['v'] });
    expect(formToPolicy(f).name).toBe('n');
  });

  it('defaults to the given zone, empty numbers to 0, and leaves bad numbers for the service to name', () => {
    const f = emptyPolicyForm('America/New_York');
    expect(f.timeZone).toBe('America/New_York');
    const body = formToPolicy({ ...f, yearly: '', lockDays: 'x', windowEnabled: true, windowStart: '' });
    expect(body.retention.yearly).toBe(0);
    expect(Number.isNaN(body.lockDays)).toBe(true);
    expect(JSON.parse(JSON.stringify(body)).lockDays).toBeNull();
    expect(body.window).toEqual({ durationMinutes: 240 });
    expect(formToPolicy({ ...f, windowEnabled: false }).window).toBeNull();
  });

  it('reads HH:MM window starts', () => {
    expect(minutesOf('00:00')).toBe(0);
    expect(minutesOf('7:30')).toBe(450);
    expect(minutesOf('23:59')).toBe(1439);
    expect(minutesOf('24:00')).toBeNaN();
    expect(minutesOf('noon')).toBeNaN();
  });
});

describe('service errors by field', () => {
  it.each([
    ['request body.schedule: "61 * * * *" is not a cron expression', 'schedule', '"61 * * * *" is not a cron expression'],
    ['request body.selection.tag: the engine has no tag "nope"', 'tag', 'the engine has no tag "nope"'],
    ['request body.selection.vmIds.0: vm x not found', 'vmIds', 'vm x not found'],
    ['request body.retention.daily: Too small: expected number to be >=0', 'daily', 'Too small: expected number to be >=0'],
    ['request body.window.startMinutes: Invalid input', 'windowStart', 'Invalid input'],
    ['request body.timeZone: "Mars/Base" is not an IANA time zone', 'timeZone', '"Mars/Base" is not an IANA time zone'],
    ['request body.name: Too small', 'name', 'Too small'],
  ])('%s', (msg, field, text) => {
    expect(fieldError(msg)).toEqual({ field, message: text });
  });

  it('gives null for messages naming no field', () => {
    expect(fieldError('request body: unknown field "x"')).toBeNull();
    expect(fieldError('policy 1 not found')).toBeNull();
  });
});

describe('schedule in words', () => {
  it.each([
    ['0 2 * * *', 'Every day at 02:00'],
    ['30 23 * * 1-5', 'Every Monday, Tuesday, Wednesday, Thursday, Friday at 23:30'],
    ['0 4 * * 0', 'Every Sunday at 04:00'],
    ['0 4 * * 7,1', 'Every Monday, Sunday at 04:00'],
    ['0 4 * * 0-6', 'Every day at 04:00'],
    ['15 3 1 * *', 'Monthly on day 1 at 03:15'],
    ['* * * * *', 'Every minute'],
    ['*/15 * * * *', 'Every 15 minutes'],
    ['5 * * * *', 'Every hour at minute 5'],
    ['0 */6 * * *', 'Every 6 hours at minute 0'],
  ])('%s → %s', (expr, text) => {
    expect(cronText(expr, t)).toBe(text);
  });

  it.each(['0 2 * 1 *', '0 2 1 * 1', 'a b c d e', '0 2 * *', '61 2 * * *', '0 25 * * *', '0 2 * * MON'])('%s has no sentence', (expr) => {
    expect(cronText(expr, t)).toBeNull();
  });

  it('names the days in the user’s language', () => {
    expect(cronText('0 4 * * 1', t, 'de-DE')).toBe('Every Montag at 04:00');
  });
});

describe('texts of the table', () => {
  it('summarizes retention, leaving out zero rules', () => {
    expect(retentionSummary(policy.retention, t)).toBe('last 3 · 7 daily · 4 weekly · 12 monthly · 2 yearly');
    expect(retentionSummary({ keepLast: 0, daily: 7, weekly: 0, monthly: 0, yearly: 1 }, t)).toBe('7 daily · 1 yearly');
    expect(retentionSummary({ keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, t)).toBe('keep everything');
  });

  it('names the selection with VM names when known', () => {
    const vms = [makeVm({ id: 'A', name: 'web01' })];
    expect(selectionText({ vmIds: ['a', 'b'] }, vms, t)).toBe('web01, b');
    expect(selectionText({ tag: 'daily' }, vms, t)).toBe('Tag daily');
    expect(selectionText({ search: 'status=up' }, vms, t)).toBe('Search: status=up');
  });
});

describe('VMs in no policy', () => {
  it('keeps the VMs no enabled policy selects, by name', () => {
    const vms = [makeVm({ id: '1', name: 'web10', policies: [] }), makeVm({ id: '2', name: 'db01', policies: ['nightly'] }), makeVm({ id: '3', name: 'web9', policies: [] }), makeVm({ id: '4', name: 'app01', policies: [] })];
    expect(vmsInNoPolicy(vms).map((v) => v.name)).toEqual(['app01', 'web9', 'web10']);
    expect(vmsInNoPolicy([])).toEqual([]);
  });
});

describe('locks and zones', () => {
  it('is locked only before lockedUntil', () => {
    const now = Date.parse('2024-05-01T00:00:00Z');
    expect(isLocked('2024-05-02T00:00:00Z', now)).toBe(true);
    expect(isLocked('2024-04-30T00:00:00Z', now)).toBe(false);
    expect(isLocked(null, now)).toBe(false);
    expect(isLocked('garbage', now)).toBe(false);
  });

  it('always offers UTC and the current zone', () => {
    const zones = timeZones('Etc/GMT+5');
    expect(zones).toContain('UTC');
    expect(zones).toContain('Etc/GMT+5');
    expect([...zones].sort()).toEqual(zones);
  });
});
