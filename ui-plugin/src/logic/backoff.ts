/**
 * Reconnect delays for the live-event socket: exponential from 0.5 s to 15 s, with up to 20 %
 * jitter so a restarted service is not hit by every open WebAdmin at the same instant.
 * `random` is injectable for tests.
 */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.max(0, Math.min(attempt, 10)));
  return Math.round(base * (1 - 0.2 * random()));
}
