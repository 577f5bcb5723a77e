import { AppError, isAppError } from '../errors';
import { raceAbort, sleep } from '../util/abort';
import type { EngineCallOptions, EngineConnection } from './connection';

export interface PollOptions {
  timeoutMs: number;
  /** Longest pause between reads. Default 1 s, the SDK's period for transfers and disks. */
  intervalMs?: number;
  /** Shortest pause, the first ones (default 50 ms): a fast engine is seen at once. */
  firstIntervalMs?: number;
  signal?: AbortSignal;
}

/** The pause after a read `waitedMs` into a wait: a quarter of it, within [minPause, maxPause]. */
export function pollPause(waitedMs: number, minPause: number, maxPause: number): number {
  return Math.max(Math.min(minPause, maxPause), Math.min(maxPause, waitedMs / 4));
}

/**
 * Reads an entity until `done` says so; every read is bounded by what is left of the deadline.
 * The pause between reads is a quarter of the time waited so far, within [firstIntervalMs,
 * intervalMs]: we see a change at most ~25 % later than it happened (a fixed or doubling period
 * can cost a fast engine's phase its own length again), and a slow engine gets one read a
 * second once we have waited 4 s.
 * A read that answers ENGINE_NOT_FOUND ends the wait with `undefined` when `notFoundIsAnswer`
 * (an entity expected to go away), else it fails as it came. `last` describes the final reading
 * for the timeout message ("last status: locked").
 */
export async function pollUntil<T>(
  conn: EngineConnection,
  p: {
    what: string;
    read: (call: EngineCallOptions) => Promise<T>;
    done: (value: T) => boolean;
    last: (value: T | undefined) => string;
    notFoundIsAnswer?: boolean;
  },
  opts: PollOptions,
): Promise<T | undefined> {
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  const maxPause = opts.intervalMs ?? 1000;
  const minPause = opts.firstIntervalMs ?? 50;
  let last: T | undefined;
  const timedOut = (): AppError =>
    new AppError('ENGINE_TIMEOUT', `${p.what} did not happen within ${opts.timeoutMs} ms (${p.last(last)})`, { details: { what: p.what } });
  const aborted = (cause: unknown): AppError => new AppError('ENGINE_ABORTED', `waiting until ${p.what} aborted`, { cause });
  for (;;) {
    if (opts.signal?.aborted) throw aborted(opts.signal.reason);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timedOut();
    try {
      last = await p.read({ signal: opts.signal, timeoutMs: Math.min(remaining, conn.timeoutMs) });
    } catch (err) {
      if (p.notFoundIsAnswer && isAppError(err, 'ENGINE_NOT_FOUND')) return undefined;
      if (isAppError(err, 'ENGINE_TIMEOUT') && Date.now() >= deadline) throw timedOut();
      throw err;
    }
    if (p.done(last)) return last;
    const now = Date.now();
    const wait = Math.min(pollPause(now - start, minPause, maxPause), deadline - now);
    if (wait > 0) {
      try {
        await (opts.signal ? raceAbort(sleep(wait), opts.signal) : sleep(wait));
      } catch (err) {
        throw aborted(err);
      }
    }
  }
}
