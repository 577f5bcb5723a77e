/**
 * The chunks of one disk being served, by chunk number: a bounded LRU of their contents, one
 * load per chunk however many readers want it at once, and a bound on loads running together
 * (demand before read-ahead). A failed load is not kept, so the next read tries again.
 *
 * Readers hold what they got until they release it (the bytes were sent). A chunk no cache
 * entry and no reader holds any more goes back to the repository for reuse (`recycle`), so
 * serving a disk does not allocate, and collect, a buffer per chunk; a reader that took a whole
 * chunk drops it from the cache at once (a copy reads each chunk once).
 */

interface Entry {
  data: Promise<Buffer>;
  /** Set once loaded, until recycled. */
  value: Buffer | undefined;
  bytes: number;
  /** Readers holding the chunk now. */
  refs: number;
  cached: boolean;
}

/** A chunk's content, valid until release() (call it exactly once, when its bytes are sent). */
export interface HeldChunk {
  data: Buffer;
  release: () => void;
}

export class ChunkCache {
  /** Insertion order is recency: a hit moves its entry to the end. */
  private readonly entries = new Map<number, Entry>();
  private bytes = 0;
  private running = 0;
  private readonly waiting: Array<{ ahead: boolean; go: () => void }> = [];
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly budgetBytes: number,
    private readonly maxLoads: number,
    private readonly load: (chunk: number) => Promise<Buffer>,
    private readonly lengthOf: (chunk: number) => number,
    private readonly recycle: (data: Buffer) => void = () => undefined,
  ) {}

  /** Loads started by readers and not yet done (read-ahead counts apart). */
  demandRunning = 0;

  has(chunk: number): boolean {
    return this.entries.has(chunk);
  }

  /** The chunk's content for a reader; `whole`: the reader takes all of it (not kept cached). */
  async acquire(chunk: number, whole = false): Promise<HeldChunk> {
    const entry = this.entry(chunk, false);
    entry.refs++;
    let data: Buffer;
    try {
      data = await entry.data;
    } catch (err) {
      entry.refs--;
      throw err;
    }
    if (whole && entry.cached) this.uncache(chunk, entry);
    let held = true;
    return {
      data,
      release: () => {
        if (!held) return;
        held = false;
        entry.refs--;
        this.maybeRecycle(entry);
      },
    };
  }

  /** Starts loading the chunk for a reader that will want it soon (behind every demand load). */
  prefetch(chunk: number): void {
    this.entry(chunk, true).data.catch(() => undefined); // a failure is met again by the reader
  }

  /** Resolves once no load is running (nothing reads the point after this). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async limited(chunk: number, ahead: boolean): Promise<Buffer> {
    if (!ahead) this.demandRunning++;
    const run = (async () => {
      if (this.running < this.maxLoads) this.running++;
      else {
        // a finishing load hands its slot straight to the first waiter
        await new Promise<void>((go) => {
          if (ahead) this.waiting.push({ ahead, go });
          else {
            // demand goes before every read-ahead
            const at = this.waiting.findIndex((w) => w.ahead);
            this.waiting.splice(at < 0 ? this.waiting.length : at, 0, { ahead, go });
          }
        });
      }
      try {
        return await this.load(chunk);
      } finally {
        const next = this.waiting.shift();
        if (next) next.go();
        else this.running--;
        if (!ahead) this.demandRunning--;
      }
    })();
    this.pending.add(run);
    void run.then(
      () => this.pending.delete(run),
      () => this.pending.delete(run),
    );
    return run;
  }

  private entry(chunk: number, ahead: boolean): Entry {
    const hit = this.entries.get(chunk);
    if (hit) {
      this.entries.delete(chunk);
      this.entries.set(chunk, hit);
      return hit;
    }
    const entry: Entry = { data: this.limited(chunk, ahead), value: undefined, bytes: this.lengthOf(chunk), refs: 0, cached: true };
    this.entries.set(chunk, entry);
    this.bytes += entry.bytes;
    entry.data.then(
      (v) => {
        entry.value = v;
        this.maybeRecycle(entry); // evicted before it was even loaded
      },
      () => {
        if (entry.cached) this.uncache(chunk, entry);
      },
    );
    this.evict();
    return entry;
  }

  private evict(): void {
    for (const [chunk, entry] of this.entries) {
      if (this.bytes <= this.budgetBytes) return;
      this.uncache(chunk, entry);
    }
  }

  private uncache(chunk: number, entry: Entry): void {
    if (this.entries.get(chunk) === entry) this.entries.delete(chunk);
    entry.cached = false;
    this.bytes -= entry.bytes;
    this.maybeRecycle(entry);
  }

  private maybeRecycle(entry: Entry): void {
    if (entry.cached || entry.refs > 0 || !entry.value) return;
    const v = entry.value;
    entry.value = undefined;
    this.recycle(v);
  }
}
