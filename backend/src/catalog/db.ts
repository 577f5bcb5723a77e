import { mkdirSync } from 'fs';
import * as path from 'path';
import Database from 'better-sqlite3';
import { AppError } from '../errors';

export type Db = Database.Database;

/** One schema step: SQL run in one transaction, after which `user_version` is its position + 1. */
export type Migration = string;

/**
 * Opens (creating if needed) the SQLite file, sets the connection up and brings its schema to
 * the last of `migrations`. Any SQLite failure here (not a database, newer schema, read-only
 * directory...) becomes CATALOG_ERROR naming the file.
 */
export function openDatabase(file: string, migrations: readonly Migration[]): Db {
  const inMemory = file === ':memory:';
  let db: Db | undefined;
  try {
    if (!inMemory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = new Database(file);
    // WAL lets the API read while the job runner writes. FULL, not NORMAL: with NORMAL a power
    // cut may lose the last commits, and a job the service already reported as finished (or a
    // cancel it acknowledged) must not come back as running.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // Other processes (the CLI's rebuild) may hold the write lock for a moment.
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db, migrations, file);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof AppError) throw err;
    throw new AppError('CATALOG_ERROR', `cannot open catalog ${file}`, { cause: err });
  }
}

/**
 * Applies the migrations the database has not seen yet, each in its own transaction together
 * with the `user_version` bump, so a crash leaves the schema at a step boundary. Returns how many
 * were applied (0 when the schema is current). A database from a newer program is refused
 * rather than used with a schema this code does not know.
 */
export function migrate(db: Db, migrations: readonly Migration[], what = db.name): number {
  const current = userVersion(db);
  if (current > migrations.length) {
    throw new AppError(
      'CATALOG_ERROR',
      `cannot open catalog ${what}: its schema version ${current} is newer than this program's (${migrations.length})`,
    );
  }
  let applied = 0;
  for (let v = current; v < migrations.length; v++) {
    const sql = migrations[v] ?? '';
    const step = db.transaction(() => {
      // Re-read inside the write transaction: another process may have migrated meanwhile.
      if (userVersion(db) !== v) return false;
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
      return true;
    });
    try {
      if (step.immediate()) applied++;
    } catch (err) {
      throw new AppError('CATALOG_ERROR', `cannot open catalog ${what}: schema migration ${v + 1} failed`, { cause: err });
    }
  }
  return applied;
}

export function userVersion(db: Db): number {
  const v: unknown = db.pragma('user_version', { simple: true });
  return typeof v === 'number' ? v : Number(v);
}
