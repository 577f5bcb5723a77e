/**
 * `fn` over every item with at most `limit` calls in flight, the results in the items' order: a
 * page listing many objects asks the engine about each without opening as many requests at
 * once. The first failure rejects; calls already started run to their end, no new one starts.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      out[i] = await Promise.resolve()
        .then(() => fn(items[i] as T, i))
        .catch((err: unknown) => {
          failed = true;
          throw err;
        });
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, Math.floor(limit)), items.length) }, lane));
  return out;
}
