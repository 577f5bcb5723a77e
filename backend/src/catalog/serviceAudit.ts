import { constants, promises as fs } from 'fs';
import { appendPosition } from '../util/appendLine';
import type { AuditEntry, ServiceAuditKind } from './model';

/** The service's own audit file stops growing here (a flood of bad tokens must not fill the
 *  disk); the repository's audit log is not affected. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** One token refused again and again is recorded once per this period. */
const REPEAT_MS = 60_000;

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
