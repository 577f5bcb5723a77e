import { isAppError } from '../../backend/src/errors';
import { gfsPrune, isoWeek, localPeriods, type GfsRule, type GfsRules } from '../../backend/src/repository/gfs';

/** Points named by their UTC instant: the id is the ISO string, so expectations read as times. */
function pts(...isos: string[]): Array<{ id: string; time: Date }> {
  return isos.map((iso) => ({ id: iso, time: new Date(iso) }));
}

function kept(points: Array<{ id: string; time: Date }>, rules: GfsRules, timeZone = 'UTC'): string[] {
  return gfsPrune(points, rules, { timeZone })
    .filter((d) => d.keep)
    .map((d) => d.id)
    .sort();
}

function keptBy(points: Array<{ id: string; time: Date }>, rules: GfsRules, timeZone = 'UTC'): Record<string, GfsRule[]> {
  const out: Record<string, GfsRule[]> = {};
  for (const d of gfsPrune(points, rules, { timeZone })) if (d.keep) out[d.id] = d.keptBy;
  return out;
}

describe('local calendar periods', () => {
  test.each([
    // [instant, zone, day, ISO week, month, year]
    ['2026-01-31T22:30:00Z', 'UTC', '2026-01-31', '2026-W05', '2026-01', '2026'],
    ['2026-01-31T23:30:00Z', 'Europe/Paris', '2026-02-01', '2026-W05', '2026-02', '2026'], // 00:30 CET, a Sunday
    ['2025-12-31T23:30:00Z', 'Europe/Paris', '2026-01-01', '2026-W01', '2026-01', '2026'],
    ['2025-12-31T23:30:00Z', 'America/New_York', '2025-12-31', '2026-W01', '2025-12', '2025'], // Wednesday of 2026-W01
    ['2026-10-24T22:30:00Z', 'Europe/Paris', '2026-10-25', '2026-W43', '2026-10', '2026'], // 00:30 CEST on the 25-hour day
    ['2026-10-25T22:30:00Z', 'Europe/Paris', '2026-10-25', '2026-W43', '2026-10', '2026'], // 23:30 CET, same day
    ['2026-10-25T23:30:00Z', 'Europe/Paris', '2026-10-26', '2026-W44', '2026-10', '2026'],
    ['2026-03-28T23:30:00Z', 'Europe/Paris', '2026-03-29', '2026-W13', '2026-03', '2026'], // 00:30 CET on the 23-hour day
    ['2026-03-29T21:30:00Z', 'Europe/Paris', '2026-03-29', '2026-W13', '2026-03', '2026'], // 23:30 CEST
    ['2026-03-29T22:30:00Z', 'Europe/Paris', '2026-03-30', '2026-W14', '2026-03', '2026'],
    ['2026-06-30T18:45:00Z', 'Asia/Kolkata', '2026-07-01', '2026-W27', '2026-07', '2026'], // +05:30
    ['2026-12-31T11:30:00Z', 'Pacific/Auckland', '2027-01-01', '2026-W53', '2027-01', '2027'], // NZDT +13
  ])('%s in %s', (iso, zone, day, week, month, year) => {
    expect(localPeriods(new Date(iso), zone)).toEqual({ day, week, month, year });
  });

  test.each([
    // ISO 8601 week dates, including years with a week 53
    [2004, 12, 26, 2004, 52],
    [2005, 1, 1, 2004, 53],
    [2008, 12, 29, 2009, 1],
    [2010, 1, 3, 2009, 53],
    [2020, 12, 31, 2020, 53],
    [2021, 1, 3, 2020, 53],
    [2021, 1, 4, 2021, 1],
    [2025, 12, 29, 2026, 1],
    [2026, 12, 31, 2026, 53],
    [2027, 1, 3, 2026, 53],
    [2027, 1, 4, 2027, 1],
    [2024, 2, 29, 2024, 9],
  ])('ISO week of %i-%i-%i is %i-W%i', (y, m, d, wy, w) => {
    expect(isoWeek(y, m, d)).toEqual({ weekYear: wy, week: w });
  });
});

describe('GFS prune', () => {
  test('empty input keeps nothing and fails on nothing', () => {
    expect(gfsPrune([], { keepLast: 3, daily: 7 }, { timeZone: 'Europe/Paris' })).toEqual([]);
  });

  test('no rule: every point is removed (the repository refuses such rules, the function just says so)', () => {
    expect(kept(pts('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'), {})).toEqual([]);
  });

  test('decisions come newest first whatever the input order', () => {
    const p = pts('2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z', '2026-01-01T00:00:00Z');
    expect(gfsPrune(p, { keepLast: 1 }, { timeZone: 'UTC' }).map((d) => [d.id, d.keep])).toEqual([
      ['2026-01-03T00:00:00Z', true],
      ['2026-01-02T00:00:00Z', false],
      ['2026-01-01T00:00:00Z', false],
    ]);
  });

  interface Case {
    name: string;
    points: string[];
    rules: GfsRules;
    tz?: string;
    keep: string[];
  }

  const cases: Case[] = [
    {
      name: 'keepLast keeps the n newest',
      points: ['2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z', '2026-01-01T03:00:00Z', '2026-01-02T01:00:00Z', '2026-01-03T01:00:00Z'],
      rules: { keepLast: 3 },
      keep: ['2026-01-01T03:00:00Z', '2026-01-02T01:00:00Z', '2026-01-03T01:00:00Z'],
    },
    {
      name: 'keepLast larger than the set keeps everything',
      points: ['2026-01-01T01:00:00Z', '2026-01-02T01:00:00Z'],
      rules: { keepLast: 10 },
      keep: ['2026-01-01T01:00:00Z', '2026-01-02T01:00:00Z'],
    },
    {
      name: 'daily: the newest point of each of the last n days that have points (gaps do not count)',
      points: [
        '2026-01-01T08:00:00Z',
        '2026-01-01T20:00:00Z',
        '2026-01-05T08:00:00Z',
        '2026-01-05T09:00:00Z',
        '2026-01-09T01:00:00Z',
        '2026-01-10T23:59:59Z',
      ],
      rules: { daily: 3 },
      keep: ['2026-01-05T09:00:00Z', '2026-01-09T01:00:00Z', '2026-01-10T23:59:59Z'],
    },
    {
      name: 'month boundary in UTC: Jan 31 and Feb 1 are two months',
      points: ['2026-01-30T12:00:00Z', '2026-01-31T23:59:00Z', '2026-02-01T00:01:00Z'],
      rules: { monthly: 2 },
      keep: ['2026-01-31T23:59:00Z', '2026-02-01T00:01:00Z'],
    },
    {
      name: 'month boundary in Paris: 23:30 UTC on Jan 31 is already February',
      points: ['2026-01-31T22:30:00Z', '2026-01-31T23:30:00Z'],
      rules: { monthly: 2 },
      tz: 'Europe/Paris',
      keep: ['2026-01-31T22:30:00Z', '2026-01-31T23:30:00Z'],
    },
    {
      name: 'the same two points in UTC are one month: only the newer is kept',
      points: ['2026-01-31T22:30:00Z', '2026-01-31T23:30:00Z'],
      rules: { monthly: 2 },
      tz: 'UTC',
      keep: ['2026-01-31T23:30:00Z'],
    },
    {
      name: 'year boundary in New York: 02:00 UTC on Jan 1 is still last year',
      points: ['2025-12-31T20:00:00Z', '2026-01-01T02:00:00Z', '2026-01-01T06:00:00Z'],
      rules: { yearly: 5 },
      tz: 'America/New_York',
      keep: ['2026-01-01T02:00:00Z', '2026-01-01T06:00:00Z'],
    },
    {
      name: 'yearly in UTC for the same points',
      points: ['2025-12-31T20:00:00Z', '2026-01-01T02:00:00Z', '2026-01-01T06:00:00Z'],
      rules: { yearly: 5 },
      keep: ['2025-12-31T20:00:00Z', '2026-01-01T06:00:00Z'],
    },
    {
      name: 'ISO week 53 spans the new year (2020-W53 = Mon 2020-12-28 … Sun 2021-01-03)',
      points: ['2020-12-27T12:00:00Z', '2020-12-28T12:00:00Z', '2020-12-31T12:00:00Z', '2021-01-03T12:00:00Z', '2021-01-04T12:00:00Z'],
      rules: { weekly: 3 },
      keep: ['2020-12-27T12:00:00Z', '2021-01-03T12:00:00Z', '2021-01-04T12:00:00Z'],
    },
    {
      name: 'ISO week 1 of 2026 starts on Monday 2025-12-29',
      points: ['2025-12-28T12:00:00Z', '2025-12-29T12:00:00Z', '2026-01-04T12:00:00Z'],
      rules: { weekly: 5 },
      keep: ['2025-12-28T12:00:00Z', '2026-01-04T12:00:00Z'],
    },
    {
      name: 'weekly and yearly disagree at new year: a point can be kept by yearly only',
      points: ['2020-12-31T12:00:00Z', '2021-01-03T12:00:00Z'],
      rules: { weekly: 1, yearly: 2 },
      keep: ['2020-12-31T12:00:00Z', '2021-01-03T12:00:00Z'],
    },
    {
      name: 'DST end in Paris (25-hour day 2026-10-25): 00:30 CEST and 23:30 CET are one day',
      points: ['2026-10-24T21:30:00Z', '2026-10-24T22:30:00Z', '2026-10-25T22:30:00Z', '2026-10-25T23:30:00Z'],
      rules: { daily: 10 },
      tz: 'Europe/Paris',
      keep: ['2026-10-24T21:30:00Z', '2026-10-25T22:30:00Z', '2026-10-25T23:30:00Z'],
    },
    {
      name: 'DST start in Paris (23-hour day 2026-03-29): 00:30 CET and 23:30 CEST are one day',
      points: ['2026-03-28T22:30:00Z', '2026-03-28T23:30:00Z', '2026-03-29T21:30:00Z', '2026-03-29T22:30:00Z'],
      rules: { daily: 10 },
      tz: 'Europe/Paris',
      keep: ['2026-03-28T22:30:00Z', '2026-03-29T21:30:00Z', '2026-03-29T22:30:00Z'],
    },
    {
      name: 'a fixed UTC+1 reading of the DST-start day would differ: UTC groups them otherwise',
      points: ['2026-03-28T22:30:00Z', '2026-03-28T23:30:00Z', '2026-03-29T21:30:00Z', '2026-03-29T22:30:00Z'],
      rules: { daily: 10 },
      tz: 'UTC',
      keep: ['2026-03-28T23:30:00Z', '2026-03-29T22:30:00Z'],
    },
    {
      name: 'DST in the southern hemisphere (Auckland, April 2026 ends NZDT)',
      points: ['2026-04-04T11:30:00Z', '2026-04-05T10:30:00Z', '2026-04-05T11:30:00Z', '2026-04-05T12:30:00Z'],
      rules: { daily: 5 },
      tz: 'Pacific/Auckland',
      // 11:30Z on Apr 4 = 00:30 NZDT Apr 5; 10:30Z and 11:30Z on Apr 5 = 22:30 and 23:30 NZST Apr 5; 12:30Z = 00:30 Apr 6
      keep: ['2026-04-05T11:30:00Z', '2026-04-05T12:30:00Z'],
    },
    {
      name: 'Infinity keeps every period',
      points: ['2024-05-01T00:00:00Z', '2025-05-01T00:00:00Z', '2025-06-01T00:00:00Z', '2026-05-01T00:00:00Z'],
      rules: { yearly: Infinity },
      keep: ['2024-05-01T00:00:00Z', '2025-06-01T00:00:00Z', '2026-05-01T00:00:00Z'],
    },
  ];

  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(kept(pts(...c.points), c.rules, c.tz ?? 'UTC')).toEqual([...c.keep].sort());
  });

  test('ties on time: the larger id is the newer, whatever the input order', () => {
    const t = new Date('2026-05-01T10:00:00Z');
    const a = { id: '20260501T100000Z-aaaaaa', time: t };
    const b = { id: '20260501T100000Z-bbbbbb', time: t };
    for (const input of [[a, b], [b, a]]) {
      const d = gfsPrune(input, { keepLast: 1, daily: 1 }, { timeZone: 'UTC' });
      expect(d.map((x) => [x.id, x.keptBy])).toEqual([
        [b.id, ['last', 'daily']],
        [a.id, []],
      ]);
    }
  });

  test('each rule counts on its own and a point lists every rule that kept it', () => {
    const p = pts(
      '2025-11-15T10:00:00Z',
      '2025-12-20T10:00:00Z',
      '2026-01-05T10:00:00Z',
      '2026-01-12T10:00:00Z',
      '2026-01-13T10:00:00Z',
      '2026-01-13T18:00:00Z',
    );
    expect(keptBy(p, { keepLast: 2, daily: 3, weekly: 2, monthly: 3, yearly: 2 })).toEqual({
      '2026-01-13T18:00:00Z': ['last', 'daily', 'weekly', 'monthly', 'yearly'],
      '2026-01-13T10:00:00Z': ['last'],
      '2026-01-12T10:00:00Z': ['daily'],
      '2026-01-05T10:00:00Z': ['daily', 'weekly'],
      '2025-12-20T10:00:00Z': ['monthly', 'yearly'],
      '2025-11-15T10:00:00Z': ['monthly'],
    });
  });

  test.each<[string, Array<{ id: string; time: Date }>, GfsRules, string]>([
    ['a bad time zone', [], { daily: 1 }, 'Mars/Olympus'],
    ['a negative count', [], { daily: -1 }, 'UTC'],
    ['a fractional count', [], { weekly: 1.5 }, 'UTC'],
    ['an invalid date', [{ id: 'x', time: new Date('nope') }], { daily: 1 }, 'UTC'],
    ['a duplicate id', [{ id: 'x', time: new Date(0) }, { id: 'x', time: new Date(1) }], { daily: 1 }, 'UTC'],
  ])('%s is INVALID_ARGUMENT', (_n, points, rules, tz) => {
    let err: unknown;
    try {
      gfsPrune(points, rules, { timeZone: tz });
    } catch (e) {
      err = e;
    }
    expect(isAppError(err, 'INVALID_ARGUMENT')).toBe(true);
  });

  /**
   * The kept set matches the rules exactly: a reference that works period by period (for each
   * rule, the n most recent periods that have points, and the newest point of each), with local
   * dates from a different Intl path (sv-SE formatting), over two years of irregular points.
   */
  test.each(['Europe/Paris', 'America/New_York', 'Pacific/Auckland', 'UTC', 'Asia/Kolkata'])('matches a period-by-period reference in %s', (tz) => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const points: Array<{ id: string; time: Date }> = [];
    let t = Date.parse('2025-01-01T00:00:00Z');
    for (let i = 0; i < 900; i++) {
      t += Math.floor(rand() * 40 * 3600_000); // 0..40 h apart: some days get several, some none
      points.push({ id: `p${String(i).padStart(4, '0')}`, time: new Date(t) });
    }
    const rules = { keepLast: 5, daily: 14, weekly: 8, monthly: 12, yearly: 3 };

    const fmt = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    const ymd = (d: Date): [number, number, number] => fmt.format(d).split('-').map(Number) as [number, number, number];
    const periodOf = (rule: string, p: { id: string; time: Date }): string => {
      const [y, m, d] = ymd(p.time);
      if (rule === 'last') return p.id;
      if (rule === 'daily') return `${y}-${m}-${d}`;
      if (rule === 'monthly') return `${y}-${m}`;
      if (rule === 'yearly') return `${y}`;
      const w = isoWeek(y, m, d);
      return `${w.weekYear}-${w.week}`;
    };
    const expected = new Map<string, string[]>();
    const newestFirst = [...points].sort((a, b) => b.time.getTime() - a.time.getTime());
    for (const [rule, n] of [['last', rules.keepLast], ['daily', rules.daily], ['weekly', rules.weekly], ['monthly', rules.monthly], ['yearly', rules.yearly]] as const) {
      const newestOfPeriod = new Map<string, string>();
      for (const p of newestFirst) if (!newestOfPeriod.has(periodOf(rule, p))) newestOfPeriod.set(periodOf(rule, p), p.id);
      // periods in order of their newest point, newest first; the first n
      for (const id of [...newestOfPeriod.values()].slice(0, n)) expected.set(id, [...(expected.get(id) ?? []), rule]);
    }

    const got = gfsPrune(points, rules, { timeZone: tz });
    expect(got).toHaveLength(points.length);
    const gotKept = new Map(got.filter((d) => d.keep).map((d) => [d.id, d.keptBy as string[]]));
    expect(gotKept).toEqual(expected);
    expect(got.filter((d) => !d.keep).every((d) => d.keptBy.length === 0)).toBe(true);
  });
});
