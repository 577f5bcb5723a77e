import * as path from 'path';
import { Worker } from 'worker_threads';
import { AppError } from '../../errors';
import type { HashReply, HashRequest } from './hashWorker';

/** Bytes handed to the hashing thread and not yet hashed, beyond which update() waits. */
const MAX_BEHIND = 64 << 20;

/**
 * SHA-256 of a stream computed on a thread of its own (hashWorker.ts). Data is copied into a
 * transferable buffer (the caller still sends the original), zero runs go as their length.
 */
export class StreamHash {
  private readonly worker: Worker;
  private behind = 0;
  private waiters: Array<() => void> = [];
  private result: Promise<string> | undefined;
  private failure: Error | undefined;
  private closed = false;

  constructor(script = path.join(__dirname, 'hashWorker.js')) {
    this.worker = new Worker(script);
    this.worker.on('message', (m: HashReply) => {
      if (m.op !== 'ack') return;
      this.behind -= m.bytes;
      if (this.behind <= MAX_BEHIND) for (const w of this.waiters.splice(0)) w();
    });
    this.worker.on('error', (err) => {
      this.failure = err;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once the thread is not too far behind. */
  async update(data: Buffer): Promise<void> {
    this.check();
    // a buffer of its own (not pooled, not zero-filled) that can be handed over whole
    const copy = Buffer.allocUnsafeSlow(data.length);
    data.copy(copy);
    this.behind += copy.length;
    this.post({ op: 'data', data: copy }, [copy.buffer]);
    while (this.behind > MAX_BEHIND && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    this.check();
  }

  zeros(length: number): void {
    this.check();
    this.post({ op: 'zero', length });
  }

  /** The hex digest of everything fed; the thread ends with it. */
  digest(): Promise<string> {
    this.check();
    this.result ??= new Promise<string>((resolve, reject) => {
      this.worker.on('message', (m: HashReply) => {
        if (m.op === 'digest') resolve(m.hex);
      });
      this.worker.once('error', reject);
      this.post({ op: 'end' });
    }).finally(() => this.close());
    return this.result;
  }

  /** Stops the thread (idempotent); a digest not asked for is lost. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }

  private post(m: HashRequest, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }

  private check(): void {
    if (this.failure) throw new AppError('RESTORE_FAILED', `the hashing thread failed: ${this.failure.message}`, { cause: this.failure });
  }
}
