import { constants, promises as fs } from 'fs';
import { appendPosition } from '../util/appendLine';
import type { AuditEntry, ServiceAuditKind } from './model';

/** The service's own audit file stops growing here (a flood of bad tokens must not fill the
 *  disk); the repository's audit log is not affected. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** One token refused again and again is recorded once per this period. */
const REPEAT_MS = 60_000;
/** Refused tokens recorded one by one per minute; more are counted into one record a minute. */
const FAILURES_PER_MINUTE = 100;
/** One user's refused actions recorded per minute (the rest counted, as above). */
const DENIALS_PER_MINUTE = 30;

export interface AuthFailure {
  /** SHA-256 of the token, hex: only a prefix is written. */
  tokenKey: string;
  code: string;
  message: string;
  method: string;
  path: string;
  remote: string | null;
}

/** Where a record's line went: its byte offset in the file and its text (without the newline). */
export interface WrittenLine {
  offset: number;
  line: string;
}

/**
 * `<dataDir>/audit.log`: JSON lines the service appends (O_APPEND, one write per record): a
 * refused token (401 with a token), a restore started, a policy created, changed, deleted or run
 * by hand. Never a token itself: the first 16 hex digits of its SHA-256, enough to tell tokens
 * apart. The file is never rewritten; refused tokens stop being recorded once it holds 8 MiB
 * (a flood of bad tokens must not fill the disk), the other records are always written.
 *
 * The file is the truth: a record is written there first, then handed to `onWritten` (AuditSync:
 * the catalog's audit table). A record the table missed (a crash between the two) is read back
 * from the file by the catalog's import.
 */
export class ServiceAuditLog {
  private readonly recent = new Map<string, number>();
  private readonly denials = new Map<string, MinuteBudget>();
  private readonly failures = new MinuteBudget(FAILURES_PER_MINUTE, (n, minute) =>
    this.enqueue(
      { time: new Date().toISOString(), kind: 'auth-failure', source: 'service', actor: 'token:*', pointId: null, vmKey: null, reason: `${n} more refused token(s) in the minute from ${new Date(minute).toISOString()} were not recorded one by one`, details: { suppressed: n } },
      true,
    ),
  );
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly warn: (msg: string) => void = () => undefined,
    private readonly onWritten: (entry: AuditEntry, at: WrittenLine) => void = () => undefined,
  ) {}

  /** Records a refused token (in the background; a failure to write is logged, not thrown). */
  authFailure(f: AuthFailure): void {
    const now = Date.now();
    const key = `${f.tokenKey}:${f.code}`;
    const last = this.recent.get(key);
    if (last !== undefined && now - last < REPEAT_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) for (const [k, t] of this.recent) if (now - t >= REPEAT_MS) this.recent.delete(k);
    // a flood of made-up tokens becomes one record a minute with its count, not a file full of
    // them: the other records (refused actions, restores, policy changes) are never crowded out
    if (!this.failures.take(now)) return;
    const entry: AuditEntry = {
      time: new Date(now).toISOString(),
      kind: 'auth-failure',
      source: 'service',
      actor: `token:${f.tokenKey.slice(0, 16)}`,
      pointId: null,
      vmKey: null,
      reason: f.message,
      details: { code: f.code, method: f.method, path: f.path, remote: f.remote },
    };
    this.enqueue(entry, true);
  }

  /** Records an action the service refused a user (403), at most DENIALS_PER_MINUTE a minute
   *  per user (the rest counted into the next record). */
  accessDenied(d: { actor: string; reason: string; method: string; path: string; vmKey?: string | null; pointId?: string | null }): void {
    const now = Date.now();
    let bucket = this.denials.get(d.actor);
    if (!bucket) this.denials.set(d.actor, (bucket = new MinuteBudget(DENIALS_PER_MINUTE, () => undefined)));
    if (this.denials.size > 10_000) this.denials.clear();
    const skipped = bucket.skippedBefore(now);
    if (!bucket.take(now)) return;
    this.record('access-denied', { actor: d.actor, reason: d.reason, pointId: d.pointId ?? null, vmKey: d.vmKey ?? null, details: { method: d.method, path: d.path, ...(skipped > 0 ? { notRecordedBefore: skipped } : {}) } });
  }

  /** Records a user's action (in the background, in call order; a failure is logged). Records
   *  about VMs name them in `vmKey` or `details.vmIds` (what the audit's VM filter matches). */
  record(kind: Exclude<ServiceAuditKind, 'auth-failure'>, e: { actor: string; pointId?: string | null; vmKey?: string | null; reason?: string | null; details?: Record<string, unknown> }): void {
    this.enqueue({ time: new Date().toISOString(), kind, source: 'service', actor: e.actor, pointId: e.pointId ?? null, vmKey: e.vmKey ?? null, reason: e.reason ?? null, details: e.details ?? null }, false);
  }

  private enqueue(entry: AuditEntry, capped: boolean): void {
    this.writing = this.writing.then(() => this.append(entry, capped)).catch((err: unknown) => this.warn(`writing the service audit log ${this.file} failed: ${String(err)}`));
  }

  /** Resolves once every record asked for so far is written (or its failure logged). */
  flushed(): Promise<void> {
    return this.writing;
  }

  private async append(entry: AuditEntry, capped: boolean): Promise<void> {
    const size = capped ? await fs.stat(this.file).then((s) => s.size, () => 0) : 0;
    if (size >= MAX_FILE_BYTES) return;
    const fh = await fs.open(this.file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o640);
    let written: WrittenLine;
    try {
      // a line a crash cut short must not swallow this record
      const { end, cut } = await appendPosition(fh);
      const line = JSON.stringify(entry);
      // O_APPEND and one writer (this object, one write at a time): the line lands at `end`
      await fh.write((cut ? '\n' : '') + line + '\n');
      if (!capped) await fh.sync();
      written = { offset: end + (cut ? 1 : 0), line };
    } finally {
      await fh.close();
    }
    try {
      this.onWritten(entry, written);
    } catch (err) {
      this.warn(`a record of the service audit log ${this.file} is in the file but not in the catalog yet (the next import adds it): ${String(err)}`);
    }
  }
}

/**
 * At most `perMinute` records in each calendar minute; what is refused is counted and reported
 * once the next minute begins (`onSkipped`), so nothing is lost silently.
 */
class MinuteBudget {
  private minute = 0;
  private used = 0;
  private skipped = 0;

  constructor(
    private readonly perMinute: number,
    private readonly onSkipped: (n: number, minute: number) => void,
  ) {}

  take(now: number): boolean {
    this.roll(now);
    if (this.used < this.perMinute) {
      this.used++;
      return true;
    }
    this.skipped++;
    return false;
  }

  /** How many were refused in the minute before `now`'s (read once: a record carries it). */
  skippedBefore(now: number): number {
    const m = Math.floor(now / 60_000) * 60_000;
    if (m === this.minute) return 0;
    const n = this.skipped;
    this.minute = m;
    this.used = 0;
    this.skipped = 0;
    return n;
  }

  private roll(now: number): void {
    const m = Math.floor(now / 60_000) * 60_000;
    if (m === this.minute) return;
    if (this.skipped > 0) this.onSkipped(this.skipped, this.minute);
    this.minute = m;
    this.used = 0;
    this.skipped = 0;
  }
}
