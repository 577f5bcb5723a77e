import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import type { AuditEntry } from './model';
import { AppError } from '../errors';
import { auditOriginKey, type AuditRow, type AuditSource, type AuditTable, type ImportMark } from './audit';
import { parseAuditLine } from './auditLines';

/** Read at a time: bounds memory on a first import of a long file; one transaction each. */
const CHUNK = 1 << 20;
/** The file's beginning that identifies it (its first records, with their times). */
const HEAD_BYTES = 4096;

/**
 * Copies the records appended to one audit file since the last call into the `audit` table.
 * The file is only ever appended to (by the repository, by the CLI while the service runs, or
 * by the service), so each pass reads from where the last one stopped, after the last whole
 * line: a line still being written (or cut short by a crash) is left for the next pass. A file
 * shorter than the mark, or whose beginning changed, is another file: it is read from the start
 * (the rows' keys keep what is already there from being added twice).
 */
export class AuditImporter {
  private running: Promise<number> | undefined;

  constructor(
    private readonly table: AuditTable,
    readonly source: AuditSource,
    readonly file: string,
  ) {}

  /** Rows added. Concurrent calls share one pass. CATALOG_ERROR naming the file when it cannot
   *  be read. */
  run(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<number> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0; // nothing recorded yet
      throw this.readError(err);
    }
    try {
      return await this.readFrom(fh);
    } catch (err) {
      throw err instanceof AppError ? err : this.readError(err);
    } finally {
      await fh.close();
    }
  }

  private async readFrom(fh: fs.FileHandle): Promise<number> {
    const size = (await fh.stat()).size;
    const prefix = await readAt(fh, 0, Math.min(size, HEAD_BYTES));
    const mark = this.table.importMark(this.source);
    let pos = mark && mark.readTo <= size && headOf(prefix, mark.readTo) === mark.head ? mark.readTo : 0;
    let added = 0;
    let carry = Buffer.alloc(0);
    let carryAt = pos;
    while (pos < size) {
      const fresh = await readAt(fh, pos, Math.min(CHUNK, size - pos));
      if (fresh.length === 0) break; // cannot shrink (append-only), but never loop forever
      const data = Buffer.concat([carry, fresh]);
      pos += fresh.length;
      const rows: AuditRow[] = [];
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const row = this.rowOf(data.subarray(start, nl), carryAt + start);
        if (row) rows.push(row);
        start = nl + 1;
      }
      carry = data.subarray(start);
      carryAt += start;
      const next: ImportMark = { readTo: carryAt, head: headOf(prefix, carryAt) };
      added += this.table.addImported(this.source, rows, next);
    }
    return added;
  }

  private rowOf(line: Buffer, offset: number): AuditRow | undefined {
    let json: unknown;
    try {
      json = JSON.parse(line.toString('utf8'));
    } catch {
      return undefined; // not a record (a write cut short by a crash, then appended to)
    }
    const entry: Omit<AuditEntry, 'source'> | undefined = parseAuditLine(this.source, json);
    return entry ? { ...entry, source: this.source, originKey: auditOriginKey(offset, line) } : undefined;
  }

  private readError(err: unknown): AppError {
    return new AppError('CATALOG_ERROR', `importing the ${this.source} audit log ${this.file} into the catalog failed`, { cause: err });
  }
}

async function readAt(fh: fs.FileHandle, at: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, at + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Digest of the file's first min(readTo, HEAD_BYTES) bytes: what the mark was made on. */
function headOf(prefix: Buffer, readTo: number): string {
  return createHash('sha256')
    .update(prefix.subarray(0, Math.min(readTo, HEAD_BYTES)))
    .digest('hex');
}
