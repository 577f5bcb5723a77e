/**
 * Named instants at which the crash tests kill a writer (SIGKILL) to prove what FORMAT.md
 * promises for every step of a commit. With OLVM_BACKUP_TEST_STOP_AT=<name> in the environment,
 * the process reaching that instant says so on stderr and waits to be killed; otherwise a
 * crash point costs one comparison. Production never sets the variable.
 */
export const CRASH_POINTS = ['pack-published', 'index-written', 'disk-index-written', 'manifest-written'] as const;
/** The upgrade from format 1 (FORMAT.md §22), in the order it reaches them. */
export const UPGRADE_CRASH_POINTS = ['upgrade-marked', 'upgrade-index-written', 'upgrade-index-aside', 'upgrade-root-written', 'upgrade-manifest-converted', 'upgrade-config-final'] as const;
/** A remote repository's writer (FORMAT.md §24), in the order it reaches them. */
export const REMOTE_CRASH_POINTS = ['pack-uploaded', 'index-uploaded', 'point-files-uploaded', 'manifest-uploaded'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number] | (typeof UPGRADE_CRASH_POINTS)[number] | (typeof REMOTE_CRASH_POINTS)[number];

const STOP_AT = process.env['OLVM_BACKUP_TEST_STOP_AT'];

export async function crashPoint(name: CrashPoint): Promise<void> {
  if (STOP_AT !== name) return;
  process.stderr.write(`olvm-backup: stopped at ${name}\n`);
  // held until the test kills the process; a timer, so the event loop stays alive
  await new Promise<void>((resolve) => setTimeout(resolve, 10 * 60_000));
}
