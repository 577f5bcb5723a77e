/**
 * What both backup methods (QMP and the engine's API) share at their end: when a committed point
 * stops being deletable, and the error a failed run throws. Kept in one place so that the two
 * methods cannot drift apart on which failures reach the caller under their own code.
 */
import { AppError, type ErrorCode } from '../errors';

const DAY_MS = 86_400_000;

/** The point's lock: `lockDays` from now, or none. */
export function lockedUntil(lockDays: number | undefined): Date | null {
  return lockDays ? new Date(Date.now() + lockDays * DAY_MS) : null;
}

/** Codes that already say what went wrong better than BACKUP_FAILED would. */
const OWN_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_ARGUMENT', 'REPO_LOCKED', 'BACKUP_VM_NO_DISKS', 'BACKUP_NOT_CONSISTENT']);

/**
 * The failure every method reports the same way: an abort, or an error with one of OWN_CODES;
 * undefined leaves the method to say it in its own words. `details.cleanupProblems` starts empty:
 * the run's `finally` lists there what it could not undo.
 */
export function commonFailure(err: unknown, vmName: string, signal: AbortSignal | undefined): AppError | undefined {
  const details = { cleanupProblems: [] as string[] };
  if (signal?.aborted) return new AppError('BACKUP_ABORTED', `backup of vm ${vmName} aborted`, { cause: err, details });
  if (err instanceof AppError && OWN_CODES.has(err.code)) {
    return new AppError(err.code, err.message, { cause: err.cause, details: { ...err.details, ...details } });
  }
  return undefined;
}
