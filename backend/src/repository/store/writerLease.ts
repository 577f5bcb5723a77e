/**
 * The writer lease of a remote repository (FORMAT.md §24): one writer per prefix, any number of
 * readers. `writer.json` in the prefix names the holder and is rewritten every 20 s (its
 * heartbeat); a lease whose heartbeat is older than 90 s is stale and may be taken over. Taken
 * with a create-if-absent put, then read back to confirm this process owns it; a take-over of a
 * stale lease reads back twice, a settle delay apart (two writers taking over at once: the one
 * whose write landed last wins, the other sees it on its second read and refuses). A writer whose
 * heartbeats have not reached the store for 60 s (30 s before another may take over) has lost
 * the lease: `lostReason` says so and the mirror refuses every further write.
 */
import { randomUUID } from 'crypto';
import * as os from 'os';
import { AppError, isAppError } from '../../errors';
import type { ObjectStore } from './objectStore';

export const WRITER_LEASE_KEY = 'writer.json';
export const HEARTBEAT_MS = 20_000;
export const STALE_MS = 90_000;

/** The lease's intervals; tests use short ones. */
export interface LeaseTiming {
  /** How often the heartbeat is rewritten. */
  heartbeatMs: number;
  /** After how long without a heartbeat another writer may take the lease over. */
  staleMs: number;
  /** After how long without a successful heartbeat this writer stops writing (< staleMs: the
   *  margin covers a write already in flight and clocks apart). */
  lostAfterMs: number;
  /** Between the two read-backs of a take-over (longer than a read and a put of a racer). */
  settleMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { heartbeatMs: HEARTBEAT_MS, staleMs: STALE_MS, lostAfterMs: 60_000, settleMs: 2_000 };

export interface WriterLeaseRecord {
  holder: string;
  host: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  /** Random per take-over: tells this process's lease from another's with the same holder. */
  token: string;
}

function parseLease(buf: Buffer): WriterLeaseRecord | null {
  try {
    const v = JSON.parse(buf.toString('utf8')) as Partial<WriterLeaseRecord>;
    if (typeof v.holder !== 'string' || typeof v.heartbeatAt !== 'string') return null;
    return v as WriterLeaseRecord;
  } catch {
    return null;
  }
}

async function readLease(store: ObjectStore): Promise<WriterLeaseRecord | null | 'unreadable'> {
  try {
    return parseLease(await store.get(WRITER_LEASE_KEY)) ?? 'unreadable';
  } catch (err) {
    if (isAppError(err, 'STORE_NOT_FOUND')) return null;
    throw err;
  }
}

/** A lease of a process of this host that no longer runs is stale at once (as a VM lock, §8). */
function deadHere(cur: WriterLeaseRecord): boolean {
  if (cur.host !== os.hostname() || !Number.isSafeInteger(cur.pid) || cur.pid <= 0) return false;
  try {
    process.kill(cur.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function activeError(store: ObjectStore, cur: WriterLeaseRecord, staleMs: number): AppError {
  return new AppError(
    'STORE_WRITER_ACTIVE',
    `repository ${store.location} has a writer already: ${cur.holder} on ${cur.host} (pid ${cur.pid}), writing since ${cur.startedAt}, last heartbeat ${cur.heartbeatAt}; a second writer refuses to start (the lease is stale ${staleMs / 1000} s after its last heartbeat)`,
    { details: { holder: cur.holder, host: cur.host, pid: cur.pid, startedAt: cur.startedAt, heartbeatAt: cur.heartbeatAt } },
  );
}

export class WriterLease {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private lost: AppError | undefined;
  private released = false;
  /** When the last heartbeat (or the take) that reached the store was written. */
  private lastBeat: number;

  private constructor(
    private readonly store: ObjectStore,
    private record: WriterLeaseRecord,
    private readonly timing: LeaseTiming,
  ) {
    this.lastBeat = Date.parse(record.heartbeatAt);
  }

  /** Takes the lease; STORE_WRITER_ACTIVE naming the holder while another one's is fresh. */
  static async acquire(store: ObjectStore, holder: string, timing: Partial<LeaseTiming> = {}, now: () => Date = () => new Date()): Promise<WriterLease> {
    const t: LeaseTiming = { ...DEFAULT_LEASE_TIMING, ...timing };
    const at = now().toISOString();
    const record: WriterLeaseRecord = { holder, host: os.hostname(), pid: process.pid, startedAt: at, heartbeatAt: at, token: randomUUID() };
    const body = (): Buffer => Buffer.from(JSON.stringify(record) + '\n');
    const created = await store.put(WRITER_LEASE_KEY, body(), { ifAbsent: true, contentType: 'application/json' });
    let reads = 1;
    if (!created.created) {
      const cur = await readLease(store);
      if (cur !== null && cur !== 'unreadable' && now().getTime() - Date.parse(cur.heartbeatAt) < t.staleMs && !deadHere(cur)) throw activeError(store, cur, t.staleMs);
      // stale (or unreadable): taken over — confirmed by a second read after the settle delay
      await store.put(WRITER_LEASE_KEY, body(), { contentType: 'application/json' });
      reads = 2;
    }
    for (let i = 0; i < reads; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, t.settleMs));
      const back = await readLease(store);
      if (back === null || back === 'unreadable' || back.token !== record.token) {
        if (back !== null && back !== 'unreadable') throw activeError(store, back, t.staleMs);
        throw new AppError('STORE_WRITER_ACTIVE', `repository ${store.location}: the writer lease could not be confirmed (another writer took it at the same time)`);
      }
    }
    const lease = new WriterLease(store, record, t);
    lease.timer = setInterval(() => lease.heartbeat(), t.heartbeatMs);
    lease.timer.unref();
    return lease;
  }

  get holder(): string {
    return this.record.holder;
  }

  /** Why the lease was lost (another writer took it over, or no heartbeat has reached the
   *  store for `lostAfterMs`: another writer may take it over soon), if it was. */
  get lostReason(): AppError | undefined {
    if (this.lost || this.released) return this.lost;
    const since = Date.now() - this.lastBeat;
    if (since <= this.timing.lostAfterMs) return undefined;
    return new AppError(
      'STORE_WRITER_ACTIVE',
      `repository ${this.store.location}: this writer lost the writer lease: no heartbeat reached the store for ${Math.round(since / 1000)} s (limit ${this.timing.lostAfterMs / 1000} s; another writer may take it over after ${this.timing.staleMs / 1000} s)`,
      { details: { lastHeartbeatAt: new Date(this.lastBeat).toISOString() } },
    );
  }

  /** Rewrites the heartbeat, if the lease is still this process's. */
  private heartbeat(): void {
    this.beating = this.beating.then(async () => {
      if (this.released || this.lost) return;
      try {
        const cur = await readLease(this.store);
        if (cur === null || cur === 'unreadable' || cur.token !== this.record.token) {
          this.lost = cur !== null && cur !== 'unreadable' ? activeError(this.store, cur, this.timing.staleMs) : new AppError('STORE_WRITER_ACTIVE', `repository ${this.store.location}: this writer's lease is gone`);
          return;
        }
        // once lost by silence it stays lost: another writer may have judged it stale meanwhile
        if (this.lostReason) {
          this.lost = this.lostReason;
          return;
        }
        const record = { ...this.record, heartbeatAt: new Date().toISOString() };
        await this.store.put(WRITER_LEASE_KEY, Buffer.from(JSON.stringify(record) + '\n'), { contentType: 'application/json' });
        this.record = record;
        this.lastBeat = Date.parse(record.heartbeatAt);
      } catch {
        // a missed heartbeat: the next one tries again; lostReason counts the silence
      }
    });
  }

  /** Removes the lease if it is still this process's. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    const cur = await readLease(this.store).catch(() => null);
    if (cur !== null && cur !== 'unreadable' && cur.token === this.record.token) await this.store.delete(WRITER_LEASE_KEY);
  }
}
