// Unit tests of the retention preview's request and texts.
import type { RetentionPreview } from '../../../backend/src/api/contract';
import { messagesFor, translator } from '../intl/messages';
import { emptyPolicyForm } from './policyForm';
import { pointFate, previewRequest, previewSummary, vmCounts } from './retentionPreview';

const t = translator(messagesFor('en-US'));

const preview: RetentionPreview = {
  keepsAll: false,
  timeZone: 'Europe/Berlin',
  at: '2026-11-26T12:00:00.000Z',
  vms: [
    {
      vmId: 'v1',
      vmName: 'web01',
      points: [
        { pointId: 'p3', createdAt: '2026-11-26T01:00:00.000Z', action: 'keep', keptBy: ['last', 'daily'], lockedUntil: null },
        { pointId: 'p2', createdAt: '2026-11-25T01:00:00.000Z', action: 'locked', keptBy: [], lockedUntil: '2026-12-25T01:00:00.000Z' },
        { pointId: 'p1', createdAt: '2026-11-24T01:00:00.000Z', action: 'remove', keptBy: [], lockedUntil: null },
      ],
    },
  ],
  totals: { keep: 1, remove: 1, locked: 1 },
};

describe('retention preview texts', () => {
  it('sends what a save would send: selection, rules and zone of the form', () => {
    const form = { ...emptyPolicyForm('Europe/Berlin'), selectionKind: 'tag' as const, tag: ' nightly ', keepLast: '3', daily: '7', weekly: '', monthly: '12', yearly: '0' };
    expect(previewRequest(form)).toEqual({ selection: { tag: 'nightly' }, retention: { keepLast: 3, daily: 7, weekly: 0, monthly: 12, yearly: 0 }, timeZone: 'Europe/Berlin' });
  });

  it('names the rules that keep a point, the lock that holds one, and the ones that go', () => {
    const [keep, locked, remove] = preview.vms[0]!.points;
    expect(pointFate(keep!, preview, t, 'en-US')).toBe('kept by last, daily');
    expect(pointFate(locked!, preview, t, 'en-US')).toMatch(/^not kept by any rule, but locked until .*2026/);
    expect(pointFate(remove!, preview, t, 'en-US')).toBe('would be removed');
    expect(pointFate(keep!, { ...preview, keepsAll: true }, t, 'en-US')).toBe('kept (no rule removes anything)');
    // a kept point still under its lock says so; a lock that ended before the preview does not
    expect(pointFate({ ...keep!, lockedUntil: '2026-12-01T00:00:00.000Z' }, preview, t, 'en-US')).toMatch(/^kept by last, daily; locked until .*2026/);
    expect(pointFate({ ...keep!, lockedUntil: '2026-11-01T00:00:00.000Z' }, preview, t, 'en-US')).toBe('kept by last, daily');
    expect(vmCounts(preview.vms[0]!.points)).toEqual({ keep: 1, remove: 1, locked: 1 });
  });

  it('sums up: counts, "keeps all", no VM', () => {
    expect(previewSummary(preview, t)).toBe('1 restore point(s) would be removed, 1 kept by the rules, 1 kept by their retention lock.');
    expect(previewSummary({ ...preview, keepsAll: true, totals: { keep: 3, remove: 0, locked: 0 } }, t)).toBe('All zero: nothing is ever removed (3 restore point(s) now).');
    expect(previewSummary({ ...preview, vms: [] }, t)).toBe('The selection matches no VM you may see now.');
  });
});
