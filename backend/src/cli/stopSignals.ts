/**
 * For commands that serve until the operator stops them (`export`, `mount`): SIGINT and SIGTERM
 * are caught from the start — a signal that arrives while the command is still setting up ends
 * the run as soon as it serves, instead of killing it half-way with nothing cleaned up.
 */
export interface StopSignals {
  /** The first signal received, if any yet. */
  readonly received: string | undefined;
  /** Resolves with the first signal (at once when one already came). */
  wait(): Promise<string>;
  /** Stops listening; call in a finally. */
  dispose(): void;
}

export function catchStopSignals(): StopSignals {
  let received: string | undefined;
  let wake: ((signal: string) => void) | undefined;
  const on = (signal: string): void => {
    received ??= signal;
    wake?.(received);
  };
  const onTerm = (): void => on('SIGTERM');
  const onInt = (): void => on('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    get received() {
      return received;
    },
    wait: () => (received !== undefined ? Promise.resolve(received) : new Promise<string>((resolve) => (wake = resolve))),
    dispose: () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}
