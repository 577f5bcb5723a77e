/**
 * The shape every button that starts something on the service gets from its hook, and the
 * one-call-at-a-time helper behind it. A component renders an ActionState (busy → spinner,
 * disabled); the hook decides what the call is and what follows it (toasts, reloads).
 */
import { useState } from 'react';

export interface ActionState {
  /** Start it (ignored by the button while busy: the button is disabled). */
  run: () => void;
  /** Its call is in flight. */
  busy: boolean;
}

/** One call from one button: busy until it settles, then `done` with its result or `failed`. */
export function useAction<T>(call: () => Promise<T>, done: (res: T) => void, failed: (err: unknown) => void): ActionState {
  const [busy, setBusy] = useState(false);
  const run = (): void => {
    setBusy(true);
    call().then(
      (res) => {
        setBusy(false);
        done(res);
      },
      (err: unknown) => {
        setBusy(false);
        failed(err);
      },
    );
  };
  return { run, busy };
}

/** Like useAction for a list's rows: each item (a policy …) is busy on its own, by `keyOf`. */
export function useKeyedAction<I, T>(
  keyOf: (item: I) => string,
  call: (item: I) => Promise<T>,
  done: (item: I, res: T) => void,
  failed: (item: I, err: unknown) => void,
): (item: I) => ActionState {
  const [busy, setBusy] = useState<Record<string, boolean>>({});
  return (item) => {
    const key = keyOf(item);
    return {
      busy: busy[key] === true,
      run: () => {
        setBusy((b) => ({ ...b, [key]: true }));
        call(item).then(
          (res) => {
            setBusy((b) => ({ ...b, [key]: false }));
            done(item, res);
          },
          (err: unknown) => {
            setBusy((b) => ({ ...b, [key]: false }));
            failed(item, err);
          },
        );
      },
    };
  };
}
