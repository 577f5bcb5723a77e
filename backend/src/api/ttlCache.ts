/**
 * A small map whose entries expire: identities and permission answers from the engine are
 * reused for a short time, so a portal page that polls does not turn every click into engine
 * round trips, while a revoked permission or an expired token is noticed within the TTL.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  constructor(
    private readonly maxEntries: number,
    private readonly onEvict?: (value: V) => void,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= now) {
      this.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V, ttlMs: number, now = Date.now()): void {
    const old = this.entries.get(key);
    if (old && old.value !== value) this.onEvict?.(old.value);
    this.entries.delete(key); // re-inserted last: Map order is the eviction order
    this.entries.set(key, { value, expires: now + ttlMs });
    if (this.entries.size > this.maxEntries) this.sweep(now);
  }

  /** The cached value, or `load`'s (kept `ttlMs`; a failure is not kept). Concurrent callers of
   *  one key share one load: a page's parallel requests cost the engine one round trip. */
  async load(key: string, ttlMs: number, load: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = load().then((v) => {
        this.set(key, v, ttlMs);
        return v;
      });
      this.loading.set(key, pending);
      void pending.catch(() => undefined).finally(() => this.loading.delete(key));
    }
    return pending;
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.onEvict?.(e.value);
  }

  clear(): void {
    for (const k of [...this.entries.keys()]) this.delete(k);
  }

  /** Drops expired entries, then the oldest ones until the cache is back under its bound. */
  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.expires <= now) this.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.delete(k);
    }
  }
}
