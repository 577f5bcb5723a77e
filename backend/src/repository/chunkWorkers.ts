import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { AppError } from '../errors';
import type { PackWorkerInit, PackWorkerReply, PackWorkerRequest, WorkerInit, WorkerReply, WorkerRequest } from './chunkProtocol';

/** Distributive Omit, so each request variant keeps its own fields. */
export type JobRequest = WorkerRequest | PackWorkerRequest extends infer R ? (R extends WorkerRequest | PackWorkerRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  what: string;
}

/** An opaque handle on one worker of the pool (see runPinned). */
export interface WorkerHandle {
  readonly threadId: number;
}

interface Slot extends WorkerHandle {
  worker: Worker;
  threadId: number;
  pending: Map<number, Pending>;
  error?: unknown;
  /** Put replies received, and how many of them a completed sync is known to cover. */
  puts: number;
  syncedPuts: number;
}

function isPutResult(r: unknown): boolean {
  return typeof r === 'object' && r !== null && 'zero' in r && (r as { zero: boolean }).zero === false;
}

/** Twice the cores (at least 4, at most 8): a worker blocked in a chunk's fsync leaves its core
 *  to another one hashing. */
export function defaultPoolSize(): number {
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.min(8, Math.max(4, 2 * n));
}

/**
 * A fixed set of chunk worker threads. Jobs go to the worker with the fewest in flight; chunk
 * bytes are transferred, never copied. Workers are unref'd while idle, so a forgotten pool does
 * not keep the process alive, and ref'd while they owe an answer, so an awaited job does.
 * A worker that dies fails its own pending jobs (REPO_IO_ERROR) and is replaced on next use.
 */
export class ChunkWorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** A worker died owing directory fsyncs we cannot name: the next sync sweeps all of chunks/. */
  private lostDirtyDirs = false;

  constructor(
    private readonly init: WorkerInit | PackWorkerInit,
    readonly size: number = defaultPoolSize(),
    private readonly script: string = path.join(__dirname, 'chunkWorker.js'),
  ) {}

  run<T>(req: JobRequest, what: string, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new AppError('REPO_IO_ERROR', `${what}: the chunk worker pool is closed`));
    let slot: Slot;
    try {
      slot = this.pick();
    } catch (err) {
      return Promise.reject(new AppError('REPO_IO_ERROR', `${what}: could not start a chunk worker`, { cause: err }));
    }
    return this.send<T>(slot, req, what, transfer);
  }

  /** Like run, and says which worker ran it, for a follow-up that must run on the same one
   *  (format 2: the worker that hashed a chunk holds it until it is stored or dropped). */
  async runPinned<T>(req: JobRequest, what: string, transfer: ArrayBuffer[] = []): Promise<{ worker: WorkerHandle; result: T }> {
    if (this.closed) throw new AppError('REPO_IO_ERROR', `${what}: the chunk worker pool is closed`);
    let slot: Slot;
    try {
      slot = this.pick();
    } catch (err) {
      throw new AppError('REPO_IO_ERROR', `${what}: could not start a chunk worker`, { cause: err });
    }
    const result = await this.send<T>(slot, req, what, transfer);
    return { worker: slot, result };
  }

  /** Runs a job on the given worker; REPO_IO_ERROR if that worker is gone (it died or the pool closed). */
  runOn<T>(worker: WorkerHandle, req: JobRequest, what: string, transfer: ArrayBuffer[] = []): Promise<T> {
    const slot = worker as Slot;
    if (this.closed || !this.slots.includes(slot)) {
      return Promise.reject(new AppError('REPO_IO_ERROR', `${what}: chunk worker ${slot.threadId} is gone (it held this job's data)`));
    }
    return this.send<T>(slot, req, what, transfer);
  }

  /** The live workers. */
  handles(): WorkerHandle[] {
    return [...this.slots];
  }

  /** fsyncs, on every live worker, the chunk directories it touched; see WorkerRequest 'sync'. */
  async syncDirs(): Promise<void> {
    const what = 'syncing chunk directories';
    if (this.closed) throw new AppError('REPO_IO_ERROR', `${what}: the chunk worker pool is closed`);
    const sweep = this.lostDirtyDirs;
    this.lostDirtyDirs = false;
    try {
      await Promise.all(
        this.slots.map(async (s) => {
          const upTo = s.puts;
          await this.send(s, { op: 'sync' }, what, []);
          s.syncedPuts = Math.max(s.syncedPuts, upTo);
        }),
      );
      if (sweep) await this.send(this.pick(), { op: 'sync', all: true }, what, []);
    } catch (err) {
      if (sweep) this.lostDirtyDirs = true;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    for (const s of slots) this.failAll(s, new AppError('REPO_IO_ERROR', 'the chunk worker pool was closed'));
  }

  private pick(): Slot {
    if (this.slots.length < this.size) return this.spawn();
    let best = this.slots[0] as Slot;
    for (const s of this.slots) if (s.pending.size < best.pending.size) best = s;
    return best;
  }

  private spawn(): Slot {
    const worker = new Worker(this.script, { workerData: this.init });
    worker.unref();
    const slot: Slot = { worker, threadId: worker.threadId, pending: new Map(), puts: 0, syncedPuts: 0 };
    worker.on('message', (msg: WorkerReply | PackWorkerReply) => this.onReply(slot, msg));
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (slot.puts > slot.syncedPuts) this.lostDirtyDirs = true;
      const why = this.closed ? 'the chunk worker pool was closed' : `chunk worker ${slot.threadId} exited unexpectedly (code ${code})`;
      this.failAll(
        slot,
        new AppError('REPO_IO_ERROR', why, {
          cause: slot.error,
          details: { exitCode: code },
        }),
      );
    });
    this.slots.push(slot);
    return slot;
  }

  private send<T>(slot: Slot, req: JobRequest, what: string, transfer: ArrayBuffer[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, what });
      try {
        slot.worker.postMessage({ ...req, id }, transfer);
      } catch (err) {
        this.settle(slot, id);
        reject(new AppError('REPO_IO_ERROR', `${what}: could not pass the job to a chunk worker`, { cause: err, details: { postFailed: true } }));
      }
    });
  }

  private settle(slot: Slot, id: number): Pending | undefined {
    const p = slot.pending.get(id);
    slot.pending.delete(id);
    if (slot.pending.size === 0) slot.worker.unref();
    return p;
  }

  private onReply(slot: Slot, msg: WorkerReply | PackWorkerReply): void {
    const p = this.settle(slot, msg.id);
    if (!p) return;
    if (msg.ok) {
      if (isPutResult(msg.result)) slot.puts++;
      p.resolve(msg.result);
    }
    else {
      const cause = Object.assign(new Error(msg.error.message), msg.error.errno ? { code: msg.error.errno } : {});
      if (msg.error.code) p.reject(new AppError(msg.error.code, `${p.what}: ${msg.error.message}`, { cause, ...(msg.error.details ? { details: msg.error.details } : {}) }));
      else p.reject(new AppError('REPO_IO_ERROR', `${p.what} failed: ${msg.error.message}`, { cause, details: { errno: msg.error.errno } }));
    }
  }

  private failAll(slot: Slot, err: AppError): void {
    const pending = [...slot.pending.values()];
    slot.pending.clear();
    for (const p of pending) p.reject(new AppError(err.code, `${p.what} failed: ${err.message}`, { cause: err.cause ?? err, ...(err.details ? { details: err.details } : {}) }));
  }
}
