import { mapLimit } from '../../backend/src/util/mapLimit';

describe('mapLimit (bounded concurrency)', () => {
  it('keeps at most `limit` calls in flight and the results in the items\' order', async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 30 }, (_, i) => i);
    const out = await mapLimit(items, 8, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, (n * 7) % 5));
      inFlight--;
      return n * 2;
    });
    expect(out).toEqual(items.map((n) => n * 2));
    expect(most).toBe(8);
  });

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = [];
    await expect(
      mapLimit([0, 1, 2, 3, 4, 5], 2, async (n) => {
        started.push(n);
        await new Promise((r) => setTimeout(r, 1));
        if (n === 1) throw new Error('lookup failed');
        return n;
      }),
    ).rejects.toThrow('lookup failed');
    expect(started.length).toBeLessThanOrEqual(3);
  });

  it('takes an empty list and a limit below one', async () => {
    expect(await mapLimit([], 8, () => Promise.resolve(1))).toEqual([]);
    expect(await mapLimit([1, 2], 0, (n) => Promise.resolve(n))).toEqual([1, 2]);
  });
});
