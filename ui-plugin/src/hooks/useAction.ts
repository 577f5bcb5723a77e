/**
 * The shape every button that calls the service gets from its hook, and the one-call-at-a-time
 * helper behind it. A component renders an ActionState through ActionButton (busy → spinner,
 * disabled; a reason → disabled with the reason as its tooltip; blocked → disabled, the page
 * says why elsewhere); the hook decides what the call is, whether the user may make it
 * (logic/access.ts) and what follows it (toasts, reloads).
 */
import { useRef, useState } from 'react';

export interface ActionState {
  /** Start it (does nothing while busy, blocked or denied). */
  run: () => void;
  /** Its call is in flight. */
  busy: boolean;
  /** Set: the user may not do this (a missing engine permit, not a backup admin), said in a
   *  sentence; the button is disabled and shows it, and run() does nothing. */
  disabledReason?: string;
  /** It may not run now for what the page shows next to it (a plan with errors, a plan not yet
   *  made for the form as it is, a job still running): aria-disabled without a tooltip, and
   *  run() does nothing. */
  blocked?: boolean;
}

/** When an action may not run: a reason the user is told in its tooltip, or blocked by what
 *  the page shows. */
export interface ActionGate {
  disabledReason?: string | undefined;
  blocked?: boolean;
}

/**
 * One call from one button: busy until it settles, then `done` with its result or `failed`. A
 * second run() while the call is in flight is ignored — not only through the disabled button: a
 * double click can land before React has drawn it disabled, and a second DELETE would fail.
 * `gate`: a string is the reason the user may not (what most callers have).
 */
export function useAction<T>(call: () => Promise<T>, done: (res: T) => void, failed: (err: unknown) => void, gate?: string | ActionGate): ActionState {
  const [busy, setBusy] = useState(false);
  const inFlight = useRef(false);
  const { disabledReason, blocked = false } = typeof gate === 'string' ? { disabledReason: gate } : (gate ?? {});
  const run = (): void => {
    if (disabledReason || blocked || inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    const settle = (): void => {
      inFlight.current = false;
      setBusy(false);
    };
    call().then(
      (res) => {
        settle();
        done(res);
      },
      (err: unknown) => {
        settle();
        failed(err);
      },
    );
  };
  return { run, busy, ...(disabledReason ? { disabledReason } : {}), ...(blocked ? { blocked } : {}) };
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
  const inFlight = useRef(new Set<string>());
  return (item) => {
    const key = keyOf(item);
    const disabledReason = reasonOf?.(item);
    return {
      busy: busy[key] === true,
      ...(disabledReason ? { disabledReason } : {}),
      run: () => {
        if (disabledReason || inFlight.current.has(key)) return;
        inFlight.current.add(key);
        setBusy((b) => ({ ...b, [key]: true }));
        const settle = (): void => {
          inFlight.current.delete(key);
          setBusy((b) => ({ ...b, [key]: false }));
        };
        call(item).then(
          (res) => {
            settle();
            done(item, res);
          },
          (err: unknown) => {
            settle();
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
