import { AppError, ErrorCode } from '../errors';

/**
 * Runs `fn` with a signal that fires when the caller's signal fires or `timeoutMs` passes,
 * whichever comes first, and maps those two outcomes to coded errors. Every wait in the backend
 * goes through here so that none can hang forever.
 */
export async function withTimeout<T>(
  what: string,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
  codes: { timeout: ErrorCode; aborted: ErrorCode } = { timeout: 'TIMEOUT', aborted: 'ABORTED' },
): Promise<T> {
  if (outer?.aborted) throw new AppError(codes.aborted, `${what} aborted`, { cause: outer.reason });
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort(new AppError(codes.timeout, `${what} timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = (): void => ctl.abort(new AppError(codes.aborted, `${what} aborted`, { cause: outer?.reason }));
  outer?.addEventListener('abort', onAbort, { once: true });
  try {
    return await raceAbort(fn(ctl.signal), ctl.signal);
  } catch (err) {
    if (ctl.signal.aborted && !(err instanceof AppError && (err.code === codes.timeout || err.code === codes.aborted))) {
      throw ctl.signal.reason instanceof Error ? ctl.signal.reason : err;
    }
    if (timedOut && !(err instanceof AppError)) throw ctl.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}

/** Rejects with the signal's reason as soon as it aborts, even if `p` never settles. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
