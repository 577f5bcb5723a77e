/**
 * The shape every button that starts something on the service gets from its hook, and the
 * one-call-at-a-time helper behind it. A component renders an ActionState (busy → spinner,
 * disabled; a reason → disabled with the reason as its tooltip); the hook decides what the call
 * is, whether the user may make it (logic/access.ts) and what follows it (toasts, reloads).
 */
import { useState } from 'react';

export interface ActionState {
  /** Start it (ignored by the button while busy: the button is disabled). */
  run: () => void;
  /** Its call is in flight. */
  busy: boolean;
  /** Set: the user may not do this (a missing engine permit, not a backup admin), said in a
   *  sentence; the button is disabled and shows it, and run() does nothing. */
  disabledReason?: string;
}

/** One call from one button: busy until it settles, then `done` with its result or `failed`. */
export function useAction<T>(call: () => Promise<T>, done: (res: T) => void, failed: (err: unknown) => void, disabledReason?: string): ActionState {
  const [busy, setBusy] = useState(false);
  const run = (): void => {
    if (disabledReason) return;
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
  return disabledReason ? { run, busy, disabledReason } : { run, busy };
}

/** Like useAction for a list's rows: each item (a policy …) is busy on its own, by `keyOf`;
 *  `reasonOf` says why an item's action is not the user's to start. */
export function useKeyedAction<I, T>(
  keyOf: (item: I) => string,
  call: (item: I) => Promise<T>,
  done: (item: I, res: T) => void,
  failed: (item: I, err: unknown) => void,
  reasonOf?: (item: I) => string | undefined,
): (item: I) => ActionState {
  const [busy, setBusy] = useState<Record<string, boolean>>({});
  return (item) => {
    const key = keyOf(item);
    const disabledReason = reasonOf?.(item);
    return {
      busy: busy[key] === true,
      ...(disabledReason ? { disabledReason } : {}),
      run: () => {
        if (disabledReason) return;
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

/** A button that opens something of the page itself (a dialog, a form): no call of its own,
 *  but the same disabled-with-a-reason rendering. */
export function localAction(run: () => void, disabledReason?: string): ActionState {
  return disabledReason ? { run: () => undefined, busy: false, disabledReason } : { run, busy: false };
}
