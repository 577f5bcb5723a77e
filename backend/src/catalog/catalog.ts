import { AuditTable } from './audit';
import { openDatabase, type Db } from './db';
import { PointsTable } from './points';
import { MIGRATIONS } from './schema';

/**
 * The service's SQLite catalog: one file holding the restore point index and the copy of the
 * audit log (owned here), and the tables of the layers above that keep their state in it — job
 * history (jobs/JobsTable) and policies with their runs (schedule/PoliciesTable), which open
 * their tables on `db`. The schema of the whole file is one migration list (schema.ts). One
 * connection per process, used synchronously (better-sqlite3). Other processes may open the
 * same file at the same time (WAL, busy timeout).
 */
export class Catalog {
  readonly file: string;
  readonly points: PointsTable;
  readonly audit: AuditTable;

  private constructor(
    /** For the tables of jobs/ and schedule/; nothing else writes through it. */
    readonly db: Db,
    file: string,
  ) {
    this.file = file;
    this.points = new PointsTable(db);
    this.audit = new AuditTable(db);
  }

  /** Creates the file (and its directory) if needed and brings its schema up to date.
   *  CATALOG_ERROR naming the file when SQLite cannot open or migrate it. */
  static open(file: string): Catalog {
    return new Catalog(openDatabase(file, MIGRATIONS), file);
  }

  /** Runs `fn` in one transaction (nested calls become savepoints), rolled back if it throws.
   *  It takes the write lock at once (BEGIN IMMEDIATE): a read-then-write inside cannot fail
   *  half-way on another process's lock. `fn` must be synchronous: the transaction commits when
   *  it returns, so work after an await would run outside it. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Throws when the database cannot answer (the health check's probe). */
  ping(): void {
    this.db.prepare('SELECT 1').get();
  }

  /** Idempotent. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
