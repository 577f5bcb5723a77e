/**
 * The chunks of one disk being served, by chunk number: a bounded LRU of their contents, one
 * load per chunk however many readers want it at once, and a bound on loads running together
 * (demand before read-ahead). A failed load is not kept, so the next read tries again.
 */

interface Entry {
  data: Promise<Buffer>;
  bytes: number;
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
  ) {}

  /** Loads started by readers and not yet done (read-ahead counts apart). */
  demandRunning = 0;

  has(chunk: number): boolean {
    return this.entries.has(chunk);
  }

  /** The chunk's content; `ahead`: a read-ahead, which waits behind every demand load. */
  get(chunk: number, ahead = false): Promise<Buffer> {
    const hit = this.entries.get(chunk);
    if (hit) {
      this.entries.delete(chunk);
      this.entries.set(chunk, hit);
      return hit.data;
    }
    const data = this.limited(chunk, ahead);
    const entry: Entry = { data, bytes: this.lengthOf(chunk) };
    this.entries.set(chunk, entry);
    this.bytes += entry.bytes;
    data.catch(() => {
      if (this.entries.get(chunk) === entry) this.drop(chunk, entry);
    });
    this.evict();
    return data;
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

  private evict(): void {
    for (const [chunk, entry] of this.entries) {
      if (this.bytes <= this.budgetBytes) return;
      this.drop(chunk, entry);
    }
  }

  private drop(chunk: number, entry: Entry): void {
    this.entries.delete(chunk);
    this.bytes -= entry.bytes;
  }
}
