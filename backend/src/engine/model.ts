/**
 * The engine's rules that need no engine client: pure functions over what the engine says, safe
 * in a browser. Layers that only apply such a rule (the backup's chain forecast) import this
 * file, so a process that never talks to the engine (a backup by QMP socket) does not load the
 * client (index.ts).
 */

/** True when the description holds `backup=0` as a whole token (case-insensitive): separated
 *  by whitespace, `,`, `;`, `|` or brackets, a trailing `.` allowed. `nobackup=0`,
 *  `backup=01` and `backup=0x` do not count. */
export function isExcludedFromBackup(description: string | undefined): boolean {
  if (!description) return false;
  return description
    .split(/[\s,;|()[\]{}]+/)
    .map((t) => t.replace(/\.+$/, '').toLowerCase())
    .includes('backup=0');
}
