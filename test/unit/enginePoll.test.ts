/** The engine waits' poll schedule (engine/poll.ts): short first reads, growing with the wait. */
import { pollPause } from '../../backend/src/engine/poll';

/** The times at which reads happen over `totalMs` (read time itself taken as zero). */
function reads(totalMs: number, min: number, max: number): number[] {
  const at = [0];
  for (let t = 0; ; ) {
    t += pollPause(t, min, max);
    if (t > totalMs) return at;
    at.push(t);
  }
}

describe('pollPause', () => {
  test('the first pauses are the floor, then a quarter of the time waited, capped', () => {
    expect(pollPause(0, 50, 1000)).toBe(50);
    expect(pollPause(150, 50, 1000)).toBe(50);
    expect(pollPause(400, 50, 1000)).toBe(100);
    expect(pollPause(3000, 50, 1000)).toBe(750);
    expect(pollPause(60_000, 50, 1000)).toBe(1000);
  });

  test('a cap below the floor wins', () => {
    expect(pollPause(0, 50, 20)).toBe(20);
    expect(pollPause(10_000, 50, 20)).toBe(20);
  });

  test('a phase that ends at any time is seen at most a quarter (or 50 ms) later', () => {
    const at = reads(62_000, 50, 1000);
    for (let end = 1; end < 60_000; end += 37) {
      const seen = at.find((t) => t >= end) as number;
      expect(seen - end).toBeLessThanOrEqual(Math.max(50, Math.min(1000, end / 4 + 1)));
    }
  });

  test('a slow engine is not hammered: about one read a second after the first seconds', () => {
    const first5s = reads(5000, 50, 1000).length;
    const minute = reads(60_000, 50, 1000).length;
    expect(first5s).toBeLessThanOrEqual(25);
    expect(minute - first5s).toBeLessThanOrEqual(56);
  });
});
