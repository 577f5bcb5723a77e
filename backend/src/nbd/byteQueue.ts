/**
 * Bytes from a stream handed out in exact-size reads, one read at a time: what both ends of a
 * connection need while they parse (the client during its handshake, the server for options and
 * request headers). A failure fails the pending read and every later one that the queued bytes
 * cannot serve.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private queued = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  /** `onTaken` sees how many bytes are left after each read (the server resumes its socket). */
  constructor(
    private readonly concurrentReads: string,
    private readonly onTaken?: (left: number) => void,
  ) {}

  get size(): number {
    return this.queued;
  }

  /** Keeps `b` as it is: a caller that must not pin the stream's buffer copies it first. */
  push(b: Buffer): void {
    this.chunks.push(b);
    this.queued += b.length;
    this.serve();
  }

  /** Exactly `n` bytes (a view of the queue's buffer, not a copy); rejects once failed and short. */
  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error(this.concurrentReads));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.serve();
    });
  }

  fail(err: Error): void {
    this.failure ??= err;
    this.serve();
  }

  /** Everything queued, removed from the queue. */
  take(): Buffer {
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.queued = 0;
    return rest;
  }

  private serve(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.queued >= w.n) {
      this.waiter = undefined;
      const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      const rest = all.subarray(w.n);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.queued = rest.length;
      this.onTaken?.(this.queued);
      w.resolve(all.subarray(0, w.n));
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }
}
