import { ChunkCache } from '../../backend/src/restore/chunkCache';

/** A loader whose loads the test resolves or fails by hand, in any order. */
function manualLoader(): { load: (i: number) => Promise<Buffer>; started: number[]; finish: (i: number, ok?: boolean) => Promise<void> } {
  const waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  const started: number[] = [];
  return {
    started,
    load: (i) =>
      new Promise<Buffer>((resolve, reject) => {
        started.push(i);
        waiting.set(i, { resolve, reject });
      }),
    finish: async (i, ok = true) => {
      const w = waiting.get(i);
      if (!w) throw new Error(`chunk ${i} is not loading`);
      waiting.delete(i);
      if (ok) w.resolve(Buffer.alloc(10, i));
      else w.reject(new Error(`chunk ${i} is damaged`));
      // let the settled load run its bookkeeping
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('ChunkCache', () => {
  test('one load per chunk however many readers want it; hits come from memory', async () => {
    const l = manualLoader();
    const c = new ChunkCache(100, 4, l.load, () => 10);
    const a = c.acquire(1);
    const b = c.acquire(1);
    expect(l.started).toEqual([1]);
    await l.finish(1);
    expect((await a).data.equals((await b).data)).toBe(true);
    await c.acquire(1);
    expect(l.started).toEqual([1]);
  });

  test('a chunk goes back for reuse only once no reader holds it and no entry keeps it; a whole read does not keep it', async () => {
    const l = manualLoader();
    const recycled: number[] = [];
    const c = new ChunkCache(20, 4, l.load, () => 10, (b) => recycled.push(b[0] as number));
    // partial readers: cached while the budget allows
    const p1 = c.acquire(1);
    await l.finish(1);
    const h1 = await p1;
    h1.release();
    expect([c.has(1), recycled]).toEqual([true, []]);
    // a whole reader takes chunk 2 out of the cache, and it is recycled when released
    const p2 = c.acquire(2, true);
    const p2b = c.acquire(2);
    await l.finish(2);
    const [h2, h2b] = [await p2, await p2b];
    expect(c.has(2)).toBe(false);
    h2.release();
    h2.release(); // idempotent
    expect(recycled).toEqual([]);
    h2b.release();
    expect(recycled).toEqual([2]);
    // evicted while held: recycled at the release, not before
    const p3 = c.acquire(3);
    await l.finish(3);
    const h3 = await p3;
    for (const i of [4, 5]) {
      c.prefetch(i);
      await l.finish(i);
    }
    expect([c.has(1), c.has(3)]).toEqual([false, false]);
    expect(recycled).toEqual([2, 1]);
    h3.release();
    expect(recycled).toEqual([2, 1, 3]);
  });

  test('a failed load is not kept: the next read tries again', async () => {
    const l = manualLoader();
    const c = new ChunkCache(100, 4, l.load, () => 10);
    const first = c.acquire(3).catch((e: unknown) => e);
    await l.finish(3, false);
    expect(await first).toEqual(new Error('chunk 3 is damaged'));
    expect(c.has(3)).toBe(false);
    const again = c.acquire(3);
    expect(l.started).toEqual([3, 3]);
    await l.finish(3);
    expect((await again).data[0]).toBe(3);
  });

  test('bounded by bytes, least recently used out first', async () => {
    const l = manualLoader();
    const c = new ChunkCache(30, 8, l.load, () => 10);
    for (const i of [1, 2, 3]) {
      const p = c.acquire(i);
      await l.finish(i);
      (await p).release();
    }
    (await c.acquire(1)).release(); // 1 is now the most recent
    const p4 = c.acquire(4);
    await l.finish(4);
    (await p4).release();
    expect([1, 2, 3, 4].map((i) => c.has(i))).toEqual([true, false, true, true]);
  });

  test('at most maxLoads at once; waiting demand loads start before waiting read-ahead; idle() waits for all', async () => {
    const l = manualLoader();
    const c = new ChunkCache(1000, 2, l.load, () => 10);
    c.prefetch(10);
    const all = [c.acquire(1), c.acquire(2), c.acquire(3)];
    c.prefetch(11);
    await new Promise((r) => setImmediate(r));
    expect(l.started).toEqual([10, 1]);
    expect(c.demandRunning).toBe(3);
    let idle = false;
    const idling = c.idle().then(() => (idle = true));
    await l.finish(10);
    expect(l.started).toEqual([10, 1, 2]);
    await l.finish(1);
    expect(l.started).toEqual([10, 1, 2, 3]);
    await l.finish(2);
    expect(l.started).toEqual([10, 1, 2, 3, 11]);
    await l.finish(3);
    expect(idle).toBe(false);
    await l.finish(11);
    await idling;
    for (const h of await Promise.all(all)) h.release();
    expect(idle).toBe(true);
    expect(c.demandRunning).toBe(0);
  });
});
