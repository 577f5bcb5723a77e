import { MAX_ATTEMPTS, nextRunState, type ChildJob, type RunContext, type RunEffect, type RunEvent, type RunSnapshot, type StoredRunVm } from '../../backend/src/schedule';
import type { PolicyRunState, PolicyRunVmState } from '../../backend/src/schedule';

/**
 * The policy run's state machine on its own: every event in every run state, every job outcome
 * in every VM state, the window and the concurrency cap, the end of a run with and without
 * retention. No clock, no catalog, no queue: what goes in and what comes out.
 */

const NOW = new Date('2026-04-01T03:00:00.000Z');
const ctx: RunContext = { now: NOW, policy: { name: 'nightly', timeZone: 'UTC' }, retention: false };

function vm(id: string, state: PolicyRunVmState, extra: Partial<StoredRunVm> = {}): StoredRunVm {
  return { runId: 'r', vmId: id, vmName: `name-${id}`, hostId: null, state, jobId: state === 'pending' ? null : `job-${id}`, joined: false, attempts: state === 'pending' ? 0 : 1, reason: null, fellBackToFull: false, finishedAt: null, ...extra };
}

function snap(state: PolicyRunState, vms: StoredRunVm[] = [], extra: Partial<RunSnapshot> & { window?: [string | null, string | null]; concurrency?: number } = {}): RunSnapshot {
  return {
    run: {
      id: 'r',
      policyId: 'p',
      policyName: 'nightly',
      trigger: 'schedule',
      scheduledAt: '2026-04-01T02:00:00.000Z',
      missedRuns: 0,
      createdAt: '2026-04-01T02:00:00.000Z',
      finishedAt: null,
      windowStart: extra.window?.[0] ?? null,
      windowEnd: extra.window?.[1] ?? null,
      concurrency: extra.concurrency ?? 10,
      state,
      requestedBy: { id: 's', name: 'the policy scheduler' },
      message: null,
    },
    vms,
    resolving: extra.resolving ?? false,
    finishing: extra.finishing ?? false,
  };
}

function job(id: string, state: ChildJob['state'], extra: Partial<ChildJob> = {}): ChildJob {
  return { id, state, finishedAt: ['queued', 'running'].includes(state) ? null : '2026-04-01T02:30:00.000Z', errorMessage: null, fellBack: [], ...extra };
}

const kinds = (effects: RunEffect[]): string[] => effects.map((e) => e.type);
const events = (effects: RunEffect[]): Array<Extract<RunEffect, { type: 'event' }>> => effects.filter((e): e is Extract<RunEffect, { type: 'event' }> => e.type === 'event');

const ALL_EVENTS: RunEvent[] = [
  { type: 'tick' },
  { type: 'resolved', vms: [{ vmId: 'a', vmName: 'name-a', hostId: 'h1' }], missing: [] },
  { type: 'resolve-failed', message: 'engine down' },
  { type: 'submitted', vmId: 'a', job: job('job-a', 'queued'), joined: false },
  { type: 'submit-failed', vmId: 'a', message: 'no', stopping: false },
  { type: 'job', vmId: 'a', job: job('job-a', 'succeeded') },
  { type: 'job-missing', vmId: 'a' },
  { type: 'retention-done' },
];

describe('policy run machine: a finished run takes no event', () => {
  for (const state of ['succeeded', 'partial', 'failed', 'skipped'] as const) {
    test.each(ALL_EVENTS.map((e) => [e.type, e] as const))(`${state} + %s: nothing changes, nothing happens`, (_name, e) => {
      const s = snap(state, [vm('a', 'queued')]);
      const { run, effects } = nextRunState(s, e, ctx);
      expect(run).toEqual(s);
      expect(effects).toEqual([]);
    });
  }
});

describe('policy run machine: resolving', () => {
  test('tick asks the engine once; a second tick while it answers asks nothing', () => {
    const first = nextRunState(snap('resolving'), { type: 'tick' }, ctx);
    expect(kinds(first.effects)).toEqual(['resolve']);
    expect(first.run.resolving).toBe(true);
    expect(nextRunState(first.run, { type: 'tick' }, ctx).effects).toEqual([]);
  });

  test('resolved: the VMs become pending and are submitted at once; missing ids are skipped with an event that names no VM', () => {
    const { run, effects } = nextRunState(snap('resolving', [], { resolving: true }), { type: 'resolved', vms: [{ vmId: 'a', vmName: 'web', hostId: 'h1' }], missing: ['gone'] }, ctx);
    expect(run.run.state).toBe('running');
    expect(run.resolving).toBe(false);
    expect(run.vms.map((v) => [v.vmId, v.state, v.attempts, v.reason])).toEqual([
      ['a', 'queued', 1, null],
      ['gone', 'skipped', 0, 'the vm does not exist in the engine (any more)'],
    ]);
    expect(effects.find((e) => e.type === 'submit')).toEqual({ type: 'submit', vmId: 'a', vmName: 'web', hostId: 'h1' });
    const skipped = events(effects).find((e) => e.description.includes('gone'));
    expect(skipped).toEqual({ type: 'event', severity: 'warning', description: 'olvm-backup policy "nightly": backup of vm gone was skipped: the vm does not exist in the engine (any more)' });
  });

  test('resolved to nothing: the run ends succeeded, "the selection matched no vm", a warning', () => {
    const { run, effects } = nextRunState(snap('resolving'), { type: 'resolved', vms: [], missing: [] }, ctx);
    expect(run.run).toMatchObject({ state: 'succeeded', message: 'the selection matched no vm', finishedAt: NOW.toISOString() });
    expect(events(effects)).toEqual([{ type: 'event', severity: 'warning', description: 'olvm-backup policy "nightly" (schedule run) finished: the selection matched no vm' }]);
  });

  test('resolve-failed: the run fails with the reason, an error event', () => {
    const { run, effects } = nextRunState(snap('resolving', [], { resolving: true }), { type: 'resolve-failed', message: 'the engine has no tag "daily" (any more)' }, ctx);
    expect(run.run).toMatchObject({ state: 'failed', message: 'selecting the vms failed: the engine has no tag "daily" (any more)', finishedAt: NOW.toISOString() });
    expect(events(effects)).toEqual([{ type: 'event', severity: 'error', description: 'olvm-backup policy "nightly": selecting the vms failed: the engine has no tag "daily" (any more)' }]);
  });

  test.each(['submitted', 'submit-failed', 'job', 'job-missing', 'retention-done'] as const)('%s before the VMs are known changes nothing', (type) => {
    const e = ALL_EVENTS.find((x) => x.type === type)!;
    const s = snap('resolving', [], { resolving: true });
    expect(nextRunState(s, e, ctx)).toEqual({ run: s, effects: [] });
  });
});

describe('policy run machine: running — window and concurrency', () => {
  test('tick submits pending VMs up to the free slots; each goes queued with one more attempt', () => {
    const s = snap('running', [vm('a', 'running'), vm('b', 'pending'), vm('c', 'pending'), vm('d', 'pending')], { concurrency: 2 });
    const { run, effects } = nextRunState(s, { type: 'tick' }, ctx);
    expect(effects).toEqual([{ type: 'submit', vmId: 'b', vmName: 'name-b', hostId: null }]);
    expect(run.vms.map((v) => v.state)).toEqual(['running', 'queued', 'pending', 'pending']);
    expect(run.vms[1]).toMatchObject({ jobId: null, attempts: 1 });
    // the same snapshot looked at again before the queue answered: nothing more
    expect(nextRunState(run, { type: 'tick' }, ctx).effects).toEqual([]);
  });

  test('before the window opens nothing is submitted', () => {
    const s = snap('running', [vm('a', 'pending')], { window: ['2026-04-01T04:00:00.000Z', '2026-04-01T06:00:00.000Z'] });
    expect(nextRunState(s, { type: 'tick' }, ctx).effects).toEqual([]);
  });

  test('at the window end: pending VMs and own queued jobs are skipped (the job cancelled); running and joined ones go on', () => {
    const s = snap('running', [vm('p', 'pending'), vm('q', 'queued'), vm('j', 'queued', { joined: true }), vm('r', 'running')], { window: ['2026-04-01T01:00:00.000Z', '2026-04-01T03:00:00.000Z'] });
    const { run, effects } = nextRunState(s, { type: 'tick' }, ctx);
    expect(run.vms.map((v) => [v.vmId, v.state])).toEqual([
      ['p', 'skipped'],
      ['q', 'skipped'],
      ['j', 'queued'],
      ['r', 'running'],
    ]);
    expect(run.vms[0]!.reason).toBe('not started before the backup window closed at 2026-04-01 03:00 UTC; the next run takes it');
    expect(effects.filter((e) => e.type === 'cancel-job')).toEqual([{ type: 'cancel-job', jobId: 'job-q' }]);
    expect(run.run.state).toBe('running');
  });

  test('the window end with every VM done or skipped ends the run partial', () => {
    const s = snap('running', [vm('a', 'succeeded'), vm('b', 'pending')], { window: [null, '2026-04-01T02:59:00.000Z'] });
    const { run } = nextRunState(s, { type: 'tick' }, ctx);
    expect(run.run).toMatchObject({ state: 'partial', message: '1 succeeded, 0 failed, 1 skipped' });
  });
});

describe('policy run machine: running — a child job in every VM state', () => {
  const outcomes: Array<[ChildJob['state'], PolicyRunVmState, string | null]> = [
    ['queued', 'queued', null],
    ['running', 'running', null],
    ['succeeded', 'succeeded', null],
    ['failed', 'failed', 'disk gone'],
    ['cancelled', 'cancelled', 'disk gone'],
    ['interrupted', 'pending', 'attempt 1 interrupted by a stop of the service'],
  ];
  for (const from of ['queued', 'running'] as const) {
    test.each(outcomes)(`${from} VM, job %s → %s`, (jobState, to, reason) => {
      const s = snap('running', [vm('a', from), vm('b', 'running')]);
      const { run } = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', jobState, { errorMessage: 'disk gone' }) }, ctx);
      // an interrupted child is pending again, and submitted again at once; a job cannot go back
      // from running to queued (nothing changes)
      const expected = jobState === 'interrupted' ? 'queued' : jobState === 'queued' ? from : to;
      expect(run.vms[0]!.state).toBe(expected);
      if (jobState !== 'interrupted') expect(run.vms[0]!.reason).toBe(reason);
      else expect(run.vms[0]!.attempts).toBe(2);
    });
  }

  test.each(['pending', 'succeeded', 'failed', 'skipped', 'cancelled'] as const)('%s VM: a job event changes nothing', (from) => {
    const s = snap('running', [vm('a', from, { jobId: 'job-a' }), vm('b', 'running')]);
    const { run, effects } = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'failed') }, ctx);
    expect(run.vms).toEqual(s.vms);
    expect(effects).toEqual([]);
  });

  test("an earlier attempt's job changes nothing", () => {
    const s = snap('running', [vm('a', 'running', { jobId: 'job-2', attempts: 2 }), vm('b', 'running')]);
    expect(nextRunState(s, { type: 'job', vmId: 'a', job: job('job-1', 'failed') }, ctx).run).toEqual(s);
  });

  test(`interrupted ${MAX_ATTEMPTS} times: the VM fails with an error event`, () => {
    const s = snap('running', [vm('a', 'running', { attempts: MAX_ATTEMPTS }), vm('b', 'running')]);
    const { run, effects } = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'interrupted') }, ctx);
    expect(run.vms[0]).toMatchObject({ state: 'failed', reason: `interrupted ${MAX_ATTEMPTS} times by stops of the service` });
    expect(events(effects)).toEqual([{ type: 'event', severity: 'error', vmId: 'a', description: `olvm-backup policy "nightly": backup of vm name-a failed: interrupted ${MAX_ATTEMPTS} times by stops of the service` }]);
  });

  test('a success that fell back to a full backup is flagged, with a warning event naming the disks', () => {
    const s = snap('running', [vm('a', 'running'), vm('b', 'running')]);
    const { run, effects } = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'succeeded', { fellBack: [{ disk: 'web_Disk1', reason: 'bitmap-missing' }] }) }, ctx);
    expect(run.vms[0]).toMatchObject({ state: 'succeeded', fellBackToFull: true, finishedAt: '2026-04-01T02:30:00.000Z' });
    expect(events(effects)).toEqual([{ type: 'event', severity: 'warning', vmId: 'a', description: 'olvm-backup policy "nightly": vm name-a fell back to a full backup (web_Disk1: bitmap-missing)' }]);
  });

  test('a failed child posts no event of the run (the backup runner posts it)', () => {
    const { effects } = nextRunState(snap('running', [vm('a', 'running'), vm('b', 'running')]), { type: 'job', vmId: 'a', job: job('job-a', 'failed', { errorMessage: 'x' }) }, ctx);
    expect(events(effects)).toEqual([]);
  });
});

describe('policy run machine: running — the queue answers a submission', () => {
  const queuedA = (): RunSnapshot => snap('running', [vm('a', 'queued', { jobId: null, attempts: 1 }), vm('b', 'running')]);

  test.each([
    ['queued', false, 'queued'],
    ['running', true, 'running'],
    ['succeeded', true, 'succeeded'],
    ['failed', true, 'failed'],
  ] as const)('submitted, job %s (joined %s) → %s', (state, joined, to) => {
    const { run } = nextRunState(queuedA(), { type: 'submitted', vmId: 'a', job: job('job-x', state), joined }, ctx);
    expect(run.vms[0]).toMatchObject({ state: to, jobId: 'job-x', joined });
  });

  test('submit-failed: the VM fails with the reason', () => {
    const { run, effects } = nextRunState(queuedA(), { type: 'submit-failed', vmId: 'a', message: 'catalog full', stopping: false }, ctx);
    expect(run.vms[0]).toMatchObject({ state: 'failed', reason: 'could not queue its backup: catalog full' });
    expect(events(effects)[0]?.severity).toBe('error');
  });

  test('submit-failed because the service stops: pending again, the attempt not counted, nothing posted', () => {
    const stopped = nextRunState(queuedA(), { type: 'submit-failed', vmId: 'a', message: 'stopping', stopping: true }, ctx);
    expect(stopped.run.vms[0]).toMatchObject({ state: 'pending', attempts: 0 });
    expect(kinds(stopped.effects)).toEqual([]);
    expect(events(stopped.effects)).toEqual([]);
  });

  test('job-missing (its job vanished from the catalog): pending, then submitted again', () => {
    const { run, effects } = nextRunState(snap('running', [vm('a', 'running'), vm('b', 'running')]), { type: 'job-missing', vmId: 'a' }, ctx);
    expect(run.vms[0]).toMatchObject({ state: 'queued', jobId: null, attempts: 2 });
    expect(kinds(effects)).toEqual(['submit']);
  });

  test.each(['resolved', 'resolve-failed', 'retention-done'] as const)('%s while running (not finishing) changes nothing', (type) => {
    const s = snap('running', [vm('a', 'running')]);
    expect(nextRunState(s, ALL_EVENTS.find((e) => e.type === type)!, ctx)).toEqual({ run: s, effects: [] });
  });
});

describe('policy run machine: the end of a run', () => {
  test.each([
    [['succeeded', 'succeeded'], 'succeeded', '2 succeeded, 0 failed, 0 skipped', 'normal'],
    [['succeeded', 'failed'], 'partial', '1 succeeded, 1 failed, 0 skipped', 'error'],
    [['failed', 'skipped'], 'failed', '0 succeeded, 1 failed, 1 skipped', 'error'],
    [['skipped', 'cancelled'], 'partial', '0 succeeded, 0 failed, 2 skipped', 'warning'],
  ] as const)('VMs %j → %s "%s" (%s event)', (states, state, message, severity) => {
    const s = snap('running', [vm('a', 'running'), vm('b', states[1])]);
    const last = states[0] === 'succeeded' ? job('job-a', 'succeeded') : states[0] === 'failed' ? job('job-a', 'failed') : job('job-a', 'cancelled');
    const { run, effects } = nextRunState(s, { type: 'job', vmId: 'a', job: last }, ctx);
    expect(run.run).toMatchObject({ state, message, finishedAt: NOW.toISOString() });
    expect(events(effects).at(-1)).toEqual({ type: 'event', severity, description: `olvm-backup policy "nightly" (schedule run) finished: ${message}` });
  });

  test('with retention: the last success asks for retention first; the run ends on retention-done', () => {
    const withRetention = { ...ctx, retention: true };
    const s = snap('running', [vm('a', 'running'), vm('b', 'failed')]);
    const first = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'succeeded') }, withRetention);
    expect(first.run.run.state).toBe('running');
    expect(first.run.finishing).toBe(true);
    expect(first.effects.find((e) => e.type === 'apply-retention')).toMatchObject({ vms: [{ vmId: 'a', state: 'succeeded' }, { vmId: 'b', state: 'failed' }] });
    // a tick meanwhile neither asks again nor ends the run
    expect(nextRunState(first.run, { type: 'tick' }, withRetention).effects).toEqual([]);
    const done = nextRunState(first.run, { type: 'retention-done' }, withRetention);
    expect(done.run.run).toMatchObject({ state: 'partial', message: '1 succeeded, 1 failed, 0 skipped' });
    expect(done.run.finishing).toBe(false);
  });

  test('retention is not asked when nothing succeeded, or the policy is gone', () => {
    const s = snap('running', [vm('a', 'running')]);
    expect(kinds(nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'failed') }, { ...ctx, retention: true }).effects)).not.toContain('apply-retention');
    const gone = nextRunState(s, { type: 'job', vmId: 'a', job: job('job-a', 'succeeded') }, { ...ctx, retention: true, policy: undefined });
    expect(kinds(gone.effects)).not.toContain('apply-retention');
    expect(gone.run.run.state).toBe('succeeded');
  });

  test('the input snapshot is never changed', () => {
    const s = snap('running', [vm('a', 'pending')]);
    const copy = JSON.parse(JSON.stringify(s)) as RunSnapshot;
    nextRunState(s, { type: 'tick' }, ctx);
    expect(s).toEqual(copy);
  });
});
