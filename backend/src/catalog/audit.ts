import { createHash } from 'crypto';
import type { Statement } from 'better-sqlite3';
import type { AuditEntry, AuditKind } from './model';
import { AppError } from '../errors';
import { decodeCursor, encodeCursor } from './cursor';
import type { Db } from './db';
import { jsonList } from './sqlite';
import { StatementCache } from './statementCache';

export type AuditSource = AuditEntry['source'];

/** A record to add: the entry, and which line of its file it is (`auditOriginKey`). */
export interface AuditRow extends AuditEntry {
  originKey: string;
}

export interface AuditQuery {
  /** ISO 8601: at or after. */
  since?: string;
  /** ISO 8601: before (a range `since`..`until` and the next one starting at `until` do not overlap). */
  until?: string;
  /** Only these actions (kinds); an empty list matches nothing. */
  actions?: readonly string[];
  /** Only records about this VM: its key, or among the VMs a policy record names. */
  vmKey?: string;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  limit: number;
}

/** How far a file was imported: the byte after the last whole line read, and a digest of the
 *  file's beginning, which tells the same file grown from another file in its place. */
export interface ImportMark {
  readTo: number;
  head: string;
}

interface Row {
  seq: number;
  time: string;
  source: AuditSource;
  actor: string;
  action: string;
  vm_key: string | null;
  point_id: string | null;
  reason: string | null;
  details: string | null;
}

/**
 * Which line of its file a record is: its byte offset and a digest of its bytes (without the
 * newline). The offset keeps two identical lines apart; the digest keeps a line of another file
 * at the same offset apart. The service computes it when it writes a line, the importer when it
 * reads one: both must give the same key for the same line.
 */
export function auditOriginKey(offset: number, line: Buffer | string): string {
  return `${offset}:${createHash('sha256').update(line).digest('hex').slice(0, 32)}`;
}

/**
 * The `audit` table: the audit files' records, to filter and page without reading the files.
 * Rows are only ever inserted (triggers refuse UPDATE and DELETE); a row whose (source,
 * origin_key) is there already is skipped, so importing a file again adds nothing.
 */
export class AuditTable {
  private readonly insertStmt: Statement<[Record<string, unknown>]>;
  private readonly markStmt: Statement<[string], { read_to: number; head: string }>;
  private readonly setMarkStmt: Statement<[string, number, string]>;
  private readonly lastSeqStmt: Statement<[], { seq: number | null }>;
  private readonly changesAfterStmt: Statement<[number], Pick<Row, 'seq' | 'action' | 'point_id' | 'details'>>;
  private readonly lastOfStmt: Statement<[string], { time: string }>;
  private readonly listStmts: StatementCache<Row>;

  constructor(private readonly db: Db) {
    this.listStmts = new StatementCache(db, (where) => `SELECT seq, time, source, actor, action, vm_key, point_id, reason, details FROM audit ${where} ORDER BY time DESC, seq DESC LIMIT ?`);
    this.insertStmt = db.prepare(
      'INSERT INTO audit (time, source, origin_key, actor, action, vm_key, point_id, reason, details) ' +
        'VALUES (@time, @source, @origin_key, @actor, @action, @vm_key, @point_id, @reason, @details) ON CONFLICT (source, origin_key) DO NOTHING',
    );
    this.markStmt = db.prepare('SELECT read_to, head FROM audit_import WHERE source = ?');
    this.setMarkStmt = db.prepare(
      'INSERT INTO audit_import (source, read_to, head) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET read_to = excluded.read_to, head = excluded.head',
    );
    this.lastSeqStmt = db.prepare('SELECT max(seq) AS seq FROM audit');
    this.changesAfterStmt = db.prepare(
      "SELECT seq, action, point_id, details FROM audit WHERE seq > ? AND source = 'repository' AND action IN ('lock-extend', 'unlock', 'delete', 'prune') ORDER BY seq",
    );
    this.lastOfStmt = db.prepare('SELECT time FROM audit WHERE action = ? ORDER BY time DESC, seq DESC LIMIT 1');
  }

  /** Adds the rows not there yet, in one transaction; how many it added. */
  add(rows: readonly AuditRow[]): number {
    return this.db.transaction(() => this.insert(rows)).immediate();
  }

  /** Adds an import's rows and moves its mark in the same transaction: a crash between the two
   *  cannot leave the mark past rows that were not added. */
  addImported(source: AuditSource, rows: readonly AuditRow[], mark: ImportMark): number {
    return this.db
      .transaction(() => {
        const added = this.insert(rows);
        this.setMarkStmt.run(source, mark.readTo, mark.head);
        return added;
      })
      .immediate();
  }

  /** The newest row's sequence number (0: none); rows added later have larger ones. */
  lastSeq(): number {
    return this.lastSeqStmt.get()?.seq ?? 0;
  }

  /** The repository's records about points (lock changes, deletions, prunes) added after `seq`,
   *  oldest first, with their sequence numbers. */
  repositoryChangesAfter(seq: number): Array<{ seq: number; action: string; pointId: string | null; details: Record<string, unknown> | null }> {
    return this.changesAfterStmt
      .all(seq)
      .map((r) => ({ seq: r.seq, action: r.action, pointId: r.point_id, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) }));
  }

  importMark(source: AuditSource): ImportMark | undefined {
    const r = this.markStmt.get(source);
    return r ? { readTo: r.read_to, head: r.head } : undefined;
  }

  /** When the newest record of this kind was written (null: none). */
  lastOf(kind: AuditEntry['kind']): Date | null {
    const row = this.lastOfStmt.get(kind);
    return row ? new Date(row.time) : null;
  }

  /** Newest first (by time, then by the order the rows were added), `limit` at a time. */
  list(q: AuditQuery): { entries: AuditEntry[]; nextCursor: string | null } {
    if (!Number.isSafeInteger(q.limit) || q.limit < 1) throw new AppError('INVALID_ARGUMENT', `invalid audit list limit ${q.limit}`);
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.since !== undefined) {
      where.push('time >= ?');
      params.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('time < ?');
      params.push(q.until);
    }
    if (q.actions) {
      where.push('action IN (SELECT value FROM json_each(?))');
      params.push(jsonList(q.actions));
    }
    if (q.vmKey !== undefined) {
      // policy records name their VMs in details.vmIds, not in vm_key
      where.push("(vm_key = ? OR EXISTS (SELECT 1 FROM json_each(details, '$.vmIds') v WHERE v.value = ?))");
      params.push(q.vmKey, q.vmKey);
    }
    if (q.cursor !== undefined) {
      const c = decodeAuditCursor(q.cursor);
      where.push('(time, seq) < (?, ?)');
      params.push(c.time, c.seq);
    }
    params.push(q.limit + 1); // one more tells whether there is a next page
    const rows = this.listStmts.get(where).all(...params);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { entries: page.map(toEntry), nextCursor: rows.length > q.limit && last ? encodeCursor({ createdAt: last.time, id: String(last.seq) }) : null };
  }

  private insert(rows: readonly AuditRow[]): number {
    let added = 0;
    for (const r of rows) {
      const res = this.insertStmt.run({
        time: r.time,
        source: r.source,
        origin_key: r.originKey,
        actor: r.actor,
        action: r.kind,
        vm_key: r.vmKey,
        point_id: r.pointId,
        reason: r.reason,
        details: r.details === null ? null : JSON.stringify(r.details),
      });
      added += res.changes;
    }
    return added;
  }
}

/** INVALID_ARGUMENT for anything `list` did not make (the value comes from a URL). */
function decodeAuditCursor(cursor: string): { time: string; seq: number } {
  const c = decodeCursor(cursor);
  if (!/^[1-9]\d{0,15}$/.test(c.id)) throw new AppError('INVALID_ARGUMENT', `invalid paging cursor ${JSON.stringify(cursor)}`);
  return { time: c.createdAt, seq: Number(c.id) };
}

function toEntry(r: Row): AuditEntry {
  return {
    time: r.time,
    // a kind a newer program wrote is shown as it is, not dropped from the history
    kind: r.action as AuditKind,
    source: r.source,
    actor: r.actor,
    pointId: r.point_id,
    vmKey: r.vm_key,
    reason: r.reason,
    details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
  };
}
