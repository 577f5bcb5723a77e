import pino from 'pino';
import type { GcReport } from '../../backend/src/repository';
import { GcScheduler, GC_SCHEDULER_ACTOR } from '../../backend/src/schedule';

/**
 * The repository's scheduled garbage collection: at its fire times, in its time zone; a fire time
 * missed while the service was down runs once at start-up; a collection someone ran by hand
 * since the fire time counts; a failure is an engine event, and the next fire time tries again.
 */
describe('scheduled garbage collection', () => {
  const log = pino({ level: 'silent' });
  const report = { chunksRemoved: 3, bytesRemoved: 300 } as GcReport;

  function setup(o: { now: string; lastGc: string | null; fail?: boolean }) {
    let now = new Date(o.now);
    let last = o.lastGc === null ? null : new Date(o.lastGc);
    const runs: string[] = [];
    const events: string[] = [];
    const s = new GcScheduler({
      repository: {
        gc: ({ actor }) => {
          runs.push(`${now.toISOString()} ${actor}`);
          if (o.fail) return Promise.reject(new Error('disk on fire'));
          last = now;
          return Promise.resolve(report);
        },
      },
      lastGc: () => last,
      engine: { addEvent: (ev) => Promise.resolve(void events.push(`${ev.severity}: ${ev.description}`)) },
      schedule: '0 4 * * 0',
      timeZone: 'Europe/Berlin',
      log,
      clock: () => now,
    });
    return { s, runs, events, set: (t: string) => (now = new Date(t)), gcBy: (t: string) => (last = new Date(t)) };
  }

  test('a fire time missed while the service was down runs once at start-up', async () => {
    // last collected two Sundays ago; Sunday 2026-12-06 04:00 Berlin (03:00 UTC) was missed
    const t = setup({ now: '2026-12-07T12:00:00Z', lastGc: '2026-11-29T03:00:05Z' });
    t.s.start();
    await t.s.idle();
    expect(t.runs).toEqual([`2026-12-07T12:00:00.000Z ${GC_SCHEDULER_ACTOR}`]);
    await t.s.stop();
  });

  test('nothing owed: no run; a collection by hand after the fire time counts', async () => {
    const t = setup({ now: '2026-12-07T12:00:00Z', lastGc: '2026-12-06T03:30:00Z' });
    t.s.start();
    await t.s.idle();
    expect(t.runs).toEqual([]);
    await t.s.stop();
  });

  test('a first start owes nothing from before it', async () => {
    const t = setup({ now: '2026-12-07T12:00:00Z', lastGc: null });
    t.s.start();
    await t.s.idle();
    expect(t.runs).toEqual([]);
    await t.s.stop();
  });

  test('a failure is an engine error event naming the fire time in its zone', async () => {
    const t = setup({ now: '2026-12-07T12:00:00Z', lastGc: '2026-11-29T03:00:05Z', fail: true });
    t.s.start();
    await t.s.idle();
    expect(t.events).toEqual([expect.stringMatching(/^error: olvm-backup: the garbage collection due at 2026-12-06 04:00 GMT\+1 failed: disk on fire/)]);
    await t.s.stop();
  });

  test('a bad schedule or time zone is a config error naming the key', () => {
    const base = { repository: { gc: () => Promise.resolve(report) }, lastGc: () => null, engine: { addEvent: () => Promise.resolve() }, log };
    expect(() => new GcScheduler({ ...base, schedule: 'weekly', timeZone: 'UTC' })).toThrow(/repository\.gcSchedule/);
    expect(() => new GcScheduler({ ...base, schedule: '0 4 * * 0', timeZone: 'Mars/Base' })).toThrow(/repository\.gcTimeZone/);
  });
});
