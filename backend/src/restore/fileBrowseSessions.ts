/**
 * The browse sessions a service keeps: one per user per point (a second request of the same
 * user on the same point reuses the running appliance; its launch is the slow part), at most
 * `maxSessions` at once, each closed after `idleSeconds` without a request or a transfer in
 * progress, or when its appliance died (then the next request opens a new one). Every
 * operation goes to the audit hook with who and what before it runs, refusals included.
 */
import type { Readable } from 'stream';
import { AppError } from '../errors';
import type { BrowseEntry, BrowsePath, BrowseSession, FoundEntry } from './fileBrowse';
import type { BrowseLayout } from './fileBrowseAppliance';
import { displayName, type FileStat } from './fileBrowsePaths';

export const DEFAULT_IDLE_SECONDS = 900;
export const DEFAULT_MAX_SESSIONS = 4;

/** What the registry needs of a session (BrowseSession has it). */
export type BrowseSessionLike = Pick<BrowseSession, 'layout' | 'usable' | 'list' | 'stat' | 'find' | 'read' | 'archive' | 'close'>;

export type BrowseAuditAction = 'browse-open' | 'browse-list' | 'browse-stat' | 'browse-find' | 'browse-read' | 'browse-archive' | 'browse-close';

export interface BrowseAuditEntry {
  actor: string;
  pointId: string;
  action: BrowseAuditAction;
  /** What was asked: a path (escaped), a glob, why a session closed. */
  detail: string;
}

export interface BrowseSessionsOptions {
  open: (pointId: string, actor: string) => Promise<BrowseSessionLike>;
  idleSeconds?: number;
  maxSessions?: number;
  audit?: (entry: BrowseAuditEntry) => void;
}

interface Slot {
  actor: string;
  pointId: string;
  session: Promise<BrowseSessionLike>;
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

export class BrowseSessions {
  private readonly slots = new Map<string, Slot>();
  private readonly idleMs: number;
  private readonly max: number;

  constructor(private readonly opts: BrowseSessionsOptions) {
    this.idleMs = (opts.idleSeconds ?? DEFAULT_IDLE_SECONDS) * 1000;
    this.max = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Opens (or reuses) the user's session on the point; its layout. */
  async open(actor: string, pointId: string): Promise<BrowseLayout> {
    return this.with(actor, pointId, 'browse-open', '', (s) => Promise.resolve(s.layout));
  }

  list(actor: string, pointId: string, at: BrowsePath): Promise<{ entries: BrowseEntry[]; truncated: boolean }> {
    return this.with(actor, pointId, 'browse-list', shown(at), (s) => s.list(at));
  }

  stat(actor: string, pointId: string, at: BrowsePath): Promise<BrowseEntry> {
    return this.with(actor, pointId, 'browse-stat', shown(at), (s) => s.stat(at));
  }

  find(actor: string, pointId: string, glob: string, o: { filesystem?: string; limit?: number; caseInsensitive?: boolean } = {}): Promise<{ results: FoundEntry[]; truncated: boolean }> {
    return this.with(actor, pointId, 'browse-find', `${o.filesystem ?? '*'}:${glob}`, (s) => s.find(glob, o));
  }

  /** A file's bytes; the session counts as busy (never idle-closed) until the stream closes. */
  read(actor: string, pointId: string, at: BrowsePath): Promise<{ stat: FileStat; stream: Readable }> {
    return this.with(actor, pointId, 'browse-read', shown(at), (s) => s.read(at), (r) => r.stream);
  }

  /** A folder as .tar.gz; busy until the stream closes. */
  archive(actor: string, pointId: string, at: BrowsePath): Promise<Readable> {
    return this.with(actor, pointId, 'browse-archive', shown(at), (s) => s.archive(at), (r) => r);
  }

  /** Closes the user's session on the point now (idempotent). */
  async close(actor: string, pointId: string, why = 'closed by the user'): Promise<void> {
    const slot = this.slots.get(key(actor, pointId));
    if (slot) await this.drop(slot, why);
  }

  /** Every session (the service stopping). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => this.drop(s, 'the service is stopping')));
  }

  private async with<T>(actor: string, pointId: string, action: BrowseAuditAction, detail: string, op: (s: BrowseSessionLike) => Promise<T>, streamOf?: (r: T) => Readable): Promise<T> {
    this.opts.audit?.({ actor, pointId, action, detail });
    const slot = await this.slotFor(actor, pointId);
    slot.busy++;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    let held = false;
    try {
      const session = await slot.session;
      const r = await op(session);
      const stream = streamOf?.(r);
      if (stream) {
        held = true;
        stream.once('close', () => this.release(slot));
      }
      return r;
    } finally {
      if (!held) this.release(slot);
    }
  }

  private async slotFor(actor: string, pointId: string): Promise<Slot> {
    const k = key(actor, pointId);
    const had = this.slots.get(k);
    if (had) {
      const s = await had.session.catch(() => undefined);
      if (s?.usable) return had;
      // its appliance died or never came up: the request opens a new one
      if (this.slots.get(k) === had) await this.drop(had, 'its appliance ended');
      return this.slotFor(actor, pointId);
    }
    if (this.slots.size >= this.max) {
      throw new AppError('TOO_MANY_REQUESTS', `at most ${this.max} file-browsing sessions may be open at once; close one or wait (idle sessions close after ${Math.round(this.idleMs / 1000)} s)`);
    }
    const slot: Slot = { actor, pointId, session: this.opts.open(pointId, actor), busy: 0, timer: undefined };
    this.slots.set(k, slot);
    try {
      await slot.session;
    } catch (err) {
      if (this.slots.get(k) === slot) this.slots.delete(k);
      throw err;
    }
    return slot;
  }

  private release(slot: Slot): void {
    slot.busy--;
    if (slot.busy > 0 || this.slots.get(key(slot.actor, slot.pointId)) !== slot) return;
    slot.timer = setTimeout(() => void this.drop(slot, `idle for ${Math.round(this.idleMs / 1000)} s`), this.idleMs);
    slot.timer.unref();
  }

  private async drop(slot: Slot, why: string): Promise<void> {
    const k = key(slot.actor, slot.pointId);
    if (this.slots.get(k) !== slot) return;
    this.slots.delete(k);
    if (slot.timer) clearTimeout(slot.timer);
    this.opts.audit?.({ actor: slot.actor, pointId: slot.pointId, action: 'browse-close', detail: why });
    const s = await slot.session.catch(() => undefined);
    await s?.close();
  }
}

function key(actor: string, pointId: string): string {
  return `${actor}\u0000${pointId}`;
}

function shown(at: BrowsePath): string {
  return `${at.filesystem}:${displayName(at.path)}`;
}
