import { constants, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno } from './atomicFile';
import { AUDIT_FILE } from './layout';
import type { AuditAction } from './model';
import { appendPosition } from '../util/appendLine';

export type { AuditAction } from './model';

/** One line of `audit.log`. */
export interface AuditRecord {
  /** ISO 8601 UTC, when the record was written. */
  time: string;
  /** Who asked: a user name, `cli:<user>@<host>`, `service:<user>`, … */
  actor: string;
  action: AuditAction;
  pointId: string | null;
  vmKey: string | null;
  reason: string | null;
  /** Action-specific data (previous lock date, rules, counts, …). */
  details?: Record<string, unknown>;
  /** pid and host of the process that wrote the record. */
  pid: number;
  host: string;
}

export type AuditInput = Omit<AuditRecord, 'time' | 'pid' | 'host' | 'vmKey' | 'pointId' | 'reason'> &
  Partial<Pick<AuditRecord, 'vmKey' | 'pointId' | 'reason'>>;

/** `cli:<user>@<host>`: the default actor of a process that was not told who asks. */
export function processActor(prefix = 'process'): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `${prefix}:${user}@${os.hostname()}`;
}

/**
 * Appends records to `<repo>/audit.log`: opened with O_APPEND (every write lands at the end,
 * even with several writers), all records of one call in a single write(), then fsync; the
 * directory is fsynced when the write created the file. Nothing in the code base ever truncates,
 * rewrites or removes the file.
 */
export async function appendAudit(root: string, inputs: readonly AuditInput[]): Promise<AuditRecord[]> {
  if (inputs.length === 0) return [];
  const time = new Date().toISOString();
  const records: AuditRecord[] = inputs.map((r) => ({
    time,
    actor: r.actor,
    action: r.action,
    pointId: r.pointId ?? null,
    vmKey: r.vmKey ?? null,
    reason: r.reason ?? null,
    ...(r.details ? { details: r.details } : {}),
    pid: process.pid,
    host: os.hostname(),
  }));
  const data = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
  const file = path.join(root, AUDIT_FILE);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o640);
  } catch (err) {
    throw new AppError('REPO_IO_ERROR', `opening the audit log ${file} failed`, { cause: err });
  }
  let created = false;
  try {
    // a line a crash cut short (here or in another writer, e.g. the CLI) must not swallow these
    const { end, cut } = await appendPosition(fh);
    const out = cut ? Buffer.concat([Buffer.from('\n'), data]) : data;
    await fh.write(out, 0, out.length);
    await fh.sync();
    created = end === 0;
  } catch (err) {
    throw new AppError('REPO_IO_ERROR', `writing the audit log ${file} failed`, { cause: err });
  } finally {
    await fh.close();
  }
  if (created) await fsyncDir(root);
  return records;
}

/** Records oldest first; `since` keeps those written at or after it. A line that is not a
 *  complete record (a write cut short by a crash) is skipped. */
export async function readAudit(root: string, opts: { since?: Date } = {}): Promise<AuditRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(root, AUDIT_FILE), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new AppError('REPO_IO_ERROR', `reading the audit log of ${root} failed`, { cause: err });
  }
  const since = opts.since?.getTime();
  const out: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let r: AuditRecord;
    try {
      r = JSON.parse(line) as AuditRecord;
    } catch {
      continue;
    }
    if (typeof r !== 'object' || r === null || typeof r.time !== 'string' || typeof r.action !== 'string') continue;
    if (since !== undefined && !(Date.parse(r.time) >= since)) continue;
    out.push(r);
  }
  return out;
}
