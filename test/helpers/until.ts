/**
 * Polling for the engine simulator's asynchronous state (phases, cleanups): short steps, since
 * the simulator settles within milliseconds and the suites wait on it hundreds of times.
 */

/** Polls `fn` every 50 ms until it gives a value; `what` names the wait in the timeout error. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
