import type { Statement } from 'better-sqlite3';
import type { Db } from './db';

/**
 * Prepared statements of one query shape, keyed by their WHERE clause: list queries are built
 * from the filters a caller gives (a handful of combinations), and preparing a statement costs
 * more than running it.
 */
export class StatementCache<Row> {
  private readonly stmts = new Map<string, Statement<unknown[], Row>>();

  /** `sql(where)` gets "WHERE a AND b" (or "" without conditions) for the query's place. */
  constructor(
    private readonly db: Db,
    private readonly sql: (where: string) => string,
  ) {}

  get(conditions: readonly string[]): Statement<unknown[], Row> {
    const key = conditions.join(' AND ');
    let stmt = this.stmts.get(key);
    if (!stmt) {
      stmt = this.db.prepare<unknown[], Row>(this.sql(conditions.length > 0 ? `WHERE ${key}` : ''));
      this.stmts.set(key, stmt);
    }
    return stmt;
  }
}
