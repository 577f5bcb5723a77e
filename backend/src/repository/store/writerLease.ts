/**
 * The writer lease of a remote repository (FORMAT.md §24): one writer per prefix, any number of
 * readers. `writer.json` in the prefix names the holder and is rewritten every 20 s (its
 * heartbeat); a lease whose heartbeat is older than 90 s is stale and may be taken over. Taken
 * with a create-if-absent put, then read back to confirm this process owns it (two writers
 * taking over a stale lease at once: the one whose write landed last wins, the other refuses).
 */
import { randomUUID } from 'crypto';
import * as os from 'os';
import { AppError, isAppError } from '../../errors';
import type { ObjectStore } from './objectStore';

export const WRITER_LEASE_KEY = 'writer.json';
export const HEARTBEAT_MS = 20_000;
export const STALE_MS = 90_000;

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

function activeError(store: ObjectStore, cur: WriterLeaseRecord): AppError {
  return new AppError(
    'STORE_WRITER_ACTIVE',
    `repository ${store.location} has a writer already: ${cur.holder} on ${cur.host} (pid ${cur.pid}), writing since ${cur.startedAt}, last heartbeat ${cur.heartbeatAt}; a second writer refuses to start (the lease is stale ${STALE_MS / 1000} s after its last heartbeat)`,
    { details: { holder: cur.holder, host: cur.host, pid: cur.pid, startedAt: cur.startedAt, heartbeatAt: cur.heartbeatAt } },
  );
}

export class WriterLease {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private lost: AppError | undefined;
  private released = false;

  private constructor(
    private readonly store: ObjectStore,
    private record: WriterLeaseRecord,
  ) {}

  /** Takes the lease; STORE_WRITER_ACTIVE naming the holder while another one's is fresh. */
  static async acquire(store: ObjectStore, holder: string, now: () => Date = () => new Date()): Promise<WriterLease> {
    const t = now().toISOString();
    const record: WriterLeaseRecord = { holder, host: os.hostname(), pid: process.pid, startedAt: t, heartbeatAt: t, token: randomUUID() };
    const body = (): Buffer => Buffer.from(JSON.stringify(record) + '\n');
    const created = await store.put(WRITER_LEASE_KEY, body(), { ifAbsent: true, contentType: 'application/json' });
    if (!created.created) {
      const cur = await readLease(store);
      if (cur !== null && cur !== 'unreadable' && now().getTime() - Date.parse(cur.heartbeatAt) < STALE_MS && !deadHere(cur)) throw activeError(store, cur);
      // stale (or unreadable): taken over
      await store.put(WRITER_LEASE_KEY, body(), { contentType: 'application/json' });
    }
    const back = await readLease(store);
    if (back === null || back === 'unreadable' || back.token !== record.token) {
      if (back !== null && back !== 'unreadable') throw activeError(store, back);
      throw new AppError('STORE_WRITER_ACTIVE', `repository ${store.location}: the writer lease could not be confirmed (another writer took it at the same time)`);
    }
    const lease = new WriterLease(store, record);
    lease.timer = setInterval(() => lease.heartbeat(), HEARTBEAT_MS);
    lease.timer.unref();
    return lease;
  }

  get holder(): string {
    return this.record.holder;
  }

  /** Why the lease was lost (another writer took it over after a long pause), if it was. */
  get lostReason(): AppError | undefined {
    return this.lost;
  }

  /** Rewrites the heartbeat, if the lease is still this process's. */
  private heartbeat(): void {
    this.beating = this.beating.then(async () => {
      if (this.released || this.lost) return;
      try {
        const cur = await readLease(this.store);
        if (cur === null || cur === 'unreadable' || cur.token !== this.record.token) {
          this.lost = cur !== null && cur !== 'unreadable' ? activeError(this.store, cur) : new AppError('STORE_WRITER_ACTIVE', `repository ${this.store.location}: this writer's lease is gone`);
          return;
        }
        this.record = { ...this.record, heartbeatAt: new Date().toISOString() };
        await this.store.put(WRITER_LEASE_KEY, Buffer.from(JSON.stringify(this.record) + '\n'), { contentType: 'application/json' });
      } catch {
        // a missed heartbeat: the next one tries again (the lease is stale only after 90 s)
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
