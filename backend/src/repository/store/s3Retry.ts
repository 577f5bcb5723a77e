import { AppError } from '../../errors';
import { describeFailure, isRetryable, storeError, storeWords } from './s3Errors';

/**
 * Bounded retries for S3 calls. A store that throttles (503 SlowDown), fails inside (5xx) or drops
 * the connection usually recovers within seconds, so each call is tried a few times with
 * exponential backoff and full jitter (parallel uploads that all hit SlowDown must not come back
 * in lockstep). The SDK's own retry is switched off (maxAttempts 1) so that this is the one place
 * that decides, and the final error carries the store's last words. Every attempt runs under a
 * deadline: a call that hangs is aborted and counts as a failed try.
 */

export interface RetryPolicy {
  /** Attempts in all (≥ 1). */
  tries: number;
  /** First backoff ceiling, doubled per retry. */
  baseMs: number;
  /** Largest backoff ceiling. */
  maxMs: number;
  /** Deadline of one attempt (request + reading the response body). */
  attemptTimeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 5, baseMs: 200, maxMs: 8000, attemptTimeoutMs: 300_000 };

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error (mapped to its STORE_* code
 * at once) or `tries` are used up (STORE_UNAVAILABLE naming the tries and the last words). The
 * attempt gets an AbortSignal that fires at its deadline or when `outer` aborts.
 */
export async function withRetry<T>(what: string, policy: RetryPolicy, attempt: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  let last: unknown;
  for (let i = 0; i < Math.max(1, policy.tries); i++) {
    if (i > 0) await sleep(backoff(policy, i), outer);
    if (outer?.aborted) throw new AppError('ABORTED', `${what}: aborted`, { cause: outer.reason });
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new AppError('TIMEOUT', `${what}: no answer within ${policy.attemptTimeoutMs} ms`)), policy.attemptTimeoutMs);
    const signal = outer ? AbortSignal.any([deadline.signal, outer]) : deadline.signal;
    try {
      return await attempt(signal);
    } catch (err) {
      if (outer?.aborted) throw new AppError('ABORTED', `${what}: aborted`, { cause: err });
      // our own deadline fired: the store did not answer in time, worth another try
      if (!deadline.signal.aborted && !isRetryable(err)) throw storeError(what, err);
      last = deadline.signal.aborted ? deadline.signal.reason : err;
    } finally {
      clearTimeout(timer);
    }
  }
  const words = last instanceof AppError ? last.message : storeWords(describeFailure(last));
  throw new AppError('STORE_UNAVAILABLE', `${what}: the store still failed after ${policy.tries} tries, last: ${words}`, { cause: last });
}

/** Full jitter: uniform in [0, min(max, base·2^(retry-1))]. */
function backoff(p: RetryPolicy, retry: number): number {
  const ceiling = Math.min(p.maxMs, p.baseMs * 2 ** (retry - 1));
  return Math.floor(Math.random() * ceiling);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
