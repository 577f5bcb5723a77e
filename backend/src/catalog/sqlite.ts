/** SQLite's own error codes (better-sqlite3's SqliteError.code) for the failures we translate. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/**
 * Binds a list of any length as one parameter: `x IN (SELECT value FROM json_each(?))`. A
 * parameter per element would hit SQLite's limit on bound variables (32766) for large fleets,
 * and would need a statement per list length.
 */
export function jsonList(values: readonly string[]): string {
  return JSON.stringify(values);
}
