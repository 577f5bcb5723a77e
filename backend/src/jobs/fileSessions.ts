/**
 * File-level restore sessions of the service: at most one browse session (restore/fileBrowse.ts,
 * a libguestfs appliance over the point) per user per point, at most `maxSessions` at once (an
 * appliance is a QEMU VM: memory and, under TCG, a core), each closed after `idleMs` without a
 * request and all closed when the service stops. Opening takes ~20 s under TCG, so open()
 * returns at once with the session `opening` and the caller polls; requests on one session run
 * one at a time (the appliance answers one command at a time, and the session's scratch files
 * are per command). Every action — open, list, find, download, close, including the idle close
 * and a failed open — is handed to `audit` with who and what.
 */
import { randomUUID } from 'crypto';
import type { Readable } from 'stream';
import { AppError, describeError } from '../errors';
import type { BrowseLayout, BrowseSession } from '../restore';
import type { Logger } from '../util/log';

export type FileSessionState = 'opening' | 'ready' | 'failed';
export type FileAction = 'open' | 'list' | 'find' | 'download' | 'close';

export interface FileSessionHolder {
  userId: string;
  userName: string;
}

/** A session as the API shows it. */
export interface FileSessionSnapshot {
  sessionId: string;
  pointId: string;
  vmId: string;
  holder: FileSessionHolder;
  state: FileSessionState;
  /** The disks it reads (null: every disk of the point). */
  disk: string | null;
  layout: BrowseLayout | null;
  /** Why it failed to open (state `failed`). */
  error: { code: string; message: string } | null;
  openedAt: string;
  lastUsedAt: string;
}

export interface FileAuditRecord {
  actor: string;
  pointId: string;
  vmId: string;
  action: FileAction;
  /** What was asked (paths as shown, the glob) and how it went. */
  details: Record<string, unknown>;
}

export interface FileSessionsOptions {
  /** Launches a session's appliance (main.ts: BrowseSession.open over the repository). */
  open: (req: { pointId: string; disks: string[] | undefined; actor: string }) => Promise<BrowseSession>;
  idleMs: number;
  maxSessions: number;
  /** How long closeAll() waits for appliances still starting or stopping (default CLOSE_WAIT_MS). */
  closeWaitMs?: number;
  audit: (r: FileAuditRecord) => void;
  log: Logger;
}

interface Entry {
  snap: FileSessionSnapshot;
  session: BrowseSession | null;
  opening: Promise<void>;
  /** Requests on the session, one at a time. */
  chain: Promise<unknown>;
  /** Requests and streams in progress: no idle close while > 0. */
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

/** closeAll()'s default wait: a launch under TCG takes ~20 s, its stop a few. */
const CLOSE_WAIT_MS = 120_000;

const keyOf = (userId: string, pointId: string): string => `${userId}\u0000${pointId}`;

export class FileSessions {
  private readonly entries = new Map<string, Entry>();
  /** Appliances of sessions closed (or replaced) while they opened, not gone yet: each settles when it is. */
  private readonly closing = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly o: FileSessionsOptions) {}

  /**
   * The caller's session on the point: the existing one (`created` false), or a new one starting
   * (`opening`). TOO_MANY_REQUESTS when `maxSessions` run already: the refusal names the limit,
   * and the holders only of the sessions `mayName` allows (the caller's own, all for an admin).
   */
  open(holder: FileSessionHolder, point: { pointId: string; vmId: string }, disk: string | null, mayName: (s: FileSessionSnapshot) => boolean): { snapshot: FileSessionSnapshot; created: boolean } {
    if (this.stopping) throw new AppError('SERVICE_STOPPING', 'the service is stopping: file browsing is closed');
    const key = keyOf(holder.userId, point.pointId);
    const have = this.entries.get(key);
    // the same disk set only: the caller's permits were checked for `disk` (one disk, or all)
    if (have && have.snap.state !== 'failed' && have.snap.disk === disk) {
      this.touch(have);
      return { snapshot: { ...have.snap }, created: false };
    }
    // a failed session, or one over other disks, is replaced
    if (have) void this.drop(key, have, 'replaced');
    const running = [...this.entries.values()].filter((e) => e.snap.state !== 'failed');
    // an appliance still starting or stopping after its session closed counts until it is gone
    if (running.length + this.closing.size >= this.o.maxSessions) throw this.limitError(running.map((e) => e.snap), mayName);
    const now = new Date().toISOString();
    const snap: FileSessionSnapshot = { sessionId: randomUUID(), pointId: point.pointId, vmId: point.vmId, holder, state: 'opening', disk, layout: null, error: null, openedAt: now, lastUsedAt: now };
    const entry: Entry = { snap, session: null, opening: Promise.resolve(), chain: Promise.resolve(), busy: 0, timer: undefined };
    this.entries.set(key, entry);
    const t0 = Date.now();
    entry.opening = this.o.open({ pointId: point.pointId, disks: disk === null ? undefined : [disk], actor: holder.userName }).then(
      async (session) => {
        if (this.entries.get(key) !== entry) {
          // closed (or the service stopped) while it started
          await session.close().catch(() => undefined);
          return;
        }
        entry.session = session;
        snap.state = 'ready';
        snap.layout = session.layout;
        this.touch(entry);
        this.o.audit({ actor: holder.userName, pointId: point.pointId, vmId: point.vmId, action: 'open', details: { sessionId: snap.sessionId, disk, outcome: 'ok', ms: Date.now() - t0, filesystems: session.layout.filesystems.map((f) => f.device) } });
      },
      (err: unknown) => {
        snap.state = 'failed';
        snap.error = { code: err instanceof AppError ? err.code : 'INTERNAL', message: err instanceof AppError ? err.message : 'the appliance could not be started; the service log has the cause' };
        this.o.log.warn({ pointId: point.pointId, user: holder.userName, err: describeError(err) }, 'a file-browsing session failed to open');
        this.o.audit({ actor: holder.userName, pointId: point.pointId, vmId: point.vmId, action: 'open', details: { sessionId: snap.sessionId, disk, outcome: 'failed', error: snap.error.message } });
        // a failed session holds nothing; it stays for the caller to read, until idle
        this.touch(entry);
      },
    );
    this.o.log.info({ pointId: point.pointId, user: holder.userName, sessionId: snap.sessionId }, 'opening a file-browsing session');
    return { snapshot: { ...snap }, created: true };
  }

  /** The caller's session on the point, if any. */
  get(userId: string, pointId: string): FileSessionSnapshot | undefined {
    const e = this.entries.get(keyOf(userId, pointId));
    return e ? { ...e.snap } : undefined;
  }

  /** Waits (at most `ms`) for the caller's session to leave `opening`. */
  async settled(userId: string, pointId: string, ms: number): Promise<FileSessionSnapshot | undefined> {
    const e = this.entries.get(keyOf(userId, pointId));
    if (!e) return undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([e.opening, new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
    return this.get(userId, pointId);
  }

  /**
   * Runs `fn` on the caller's ready session (after its other requests), audited as `action`
   * with `details` and the outcome. NOT_FOUND without a session; CONFLICT-like JOB_CONFLICT while
   * it opens; a session whose appliance died is closed and says so.
   */
  async use<T>(holder: FileSessionHolder, pointId: string, action: Exclude<FileAction, 'open' | 'close'>, details: Record<string, unknown>, fn: (s: BrowseSession) => Promise<T>): Promise<T> {
    const key = keyOf(holder.userId, pointId);
    const e = this.ready(key, pointId);
    const session = e.session as BrowseSession;
    e.busy++;
    this.touch(e);
    const run = e.chain.then(() => fn(session));
    e.chain = run.catch(() => undefined);
    try {
      const out = await run;
      this.o.audit({ actor: holder.userName, pointId, vmId: e.snap.vmId, action, details: { ...details, outcome: 'ok' } });
      return out;
    } catch (err) {
      this.o.audit({ actor: holder.userName, pointId, vmId: e.snap.vmId, action, details: { ...details, outcome: err instanceof AppError ? err.code : 'failed', error: err instanceof Error ? err.message : String(err) } });
      if (!session.usable) {
        void this.drop(key, e, 'appliance ended');
        throw new AppError('TOOL_FAILED', `the file-browsing session of restore point ${pointId} ended (${err instanceof Error ? err.message : String(err)}): open it again`, { cause: err });
      }
      throw err;
    } finally {
      e.busy--;
      this.touch(e);
    }
  }

  /** use() for a download: the session stays busy (no idle close) until the stream ends. */
  async stream(holder: FileSessionHolder, pointId: string, details: Record<string, unknown>, fn: (s: BrowseSession) => Promise<Readable>): Promise<Readable> {
    const key = keyOf(holder.userId, pointId);
    const s = await this.use(holder, pointId, 'download', details, fn);
    const e = this.entries.get(key);
    if (e) {
      e.busy++;
      s.once('close', () => {
        e.busy--;
        this.touch(e);
      });
    }
    return s;
  }

  /** Closes the caller's session (false when there was none). */
  async close(holder: FileSessionHolder, pointId: string): Promise<boolean> {
    const key = keyOf(holder.userId, pointId);
    const e = this.entries.get(key);
    if (!e) return false;
    await this.drop(key, e, 'closed by the user');
    return true;
  }

  /** Every session closed (service stop), waiting (at most `closeWaitMs`) for appliances still starting or stopping. */
  async closeAll(): Promise<void> {
    this.stopping = true;
    const drops = [...this.entries].map(([k, e]) => this.drop(k, e, 'service stopping'));
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      Promise.all([...drops, ...this.closing]).then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), this.o.closeWaitMs ?? CLOSE_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (!waited) this.o.log.warn({ left: this.closing.size }, 'file-browsing appliances still running at stop: their processes end with the service');
  }

  private ready(key: string, pointId: string): Entry {
    const e = this.entries.get(key);
    if (!e) throw new AppError('NOT_FOUND', `no file-browsing session is open on restore point ${pointId}: open one first (POST …/files/session)`);
    if (e.snap.state === 'opening') throw new AppError('JOB_CONFLICT', `the file-browsing session of restore point ${pointId} is still opening: wait until it is ready`);
    if (e.snap.state === 'failed' || !e.session) throw new AppError('NOT_FOUND', `the file-browsing session of restore point ${pointId} failed to open (${e.snap.error?.message ?? 'unknown'}): open it again`);
    return e;
  }

  private touch(e: Entry): void {
    e.snap.lastUsedAt = new Date().toISOString();
    clearTimeout(e.timer);
    e.timer = setTimeout(() => this.idle(e), this.o.idleMs);
    e.timer.unref();
  }

  private idle(e: Entry): void {
    const key = keyOf(e.snap.holder.userId, e.snap.pointId);
    if (this.entries.get(key) !== e) return;
    if (e.busy > 0 || e.snap.state === 'opening') {
      this.touch(e);
      return;
    }
    void this.drop(key, e, `idle for ${Math.round(this.o.idleMs / 1000)} s`);
  }

  private async drop(key: string, e: Entry, why: string): Promise<void> {
    if (this.entries.get(key) === e) this.entries.delete(key);
    clearTimeout(e.timer);
    const session = e.session;
    e.session = null;
    if (!session && e.snap.state !== 'opening') return;
    this.o.audit({ actor: e.snap.holder.userName, pointId: e.snap.pointId, vmId: e.snap.vmId, action: 'close', details: { sessionId: e.snap.sessionId, why } });
    this.o.log.info({ pointId: e.snap.pointId, user: e.snap.holder.userName, sessionId: e.snap.sessionId, why }, 'file-browsing session closed');
    if (session) {
      await session.close().catch((err: unknown) => this.o.log.warn({ err: describeError(err) }, 'closing a file-browsing session failed'));
      return;
    }
    // one still opening is closed by open()'s continuation when it is up (`opening` settles
    // after that): until then its appliance counts toward maxSessions, and closeAll() waits for
    // it; the caller (a DELETE) does not
    const gone = e.opening.finally(() => this.closing.delete(gone));
    this.closing.add(gone);
  }

  private limitError(running: FileSessionSnapshot[], mayName: (s: FileSessionSnapshot) => boolean): AppError {
    const named = running.filter(mayName).map((s) => `${s.holder.userName} on restore point ${s.pointId}`);
    const others = running.length - named.length;
    const ending = this.closing.size > 0 ? [`${this.closing.size} closed while opening, still stopping`] : [];
    const who = [...named, ...(others > 0 ? [`${others} of other users`] : []), ...ending].join(', ');
    return new AppError(
      'TOO_MANY_REQUESTS',
      `file browsing is limited to ${this.o.maxSessions} session(s) at once (fileRestore.maxSessions) and all are in use (${who}): close one or wait until it is idle`,
      { details: { limit: this.o.maxSessions, inUse: running.length + this.closing.size } },
    );
  }
}
