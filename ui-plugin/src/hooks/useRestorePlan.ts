// The Restore… dialog's plan, asked of the service on every change of the body (debounced, newest answer wins).
import { useEffect, useRef, useState } from 'react';
import type { RestorePlanView, RestoreRequestBody } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import type { PlanStatus } from '../logic/restoreForm';

/** Quiet time after the last change before the plan is asked for (typing a name). */
export const PLAN_DEBOUNCE_MS = 300;

export interface RestorePlanState {
  status: PlanStatus;
  /** The last plan received (kept while a newer one is on its way). */
  plan: RestorePlanView | null;
  /** The plan shown was made for the body as it is now. */
  current: boolean;
  error: unknown;
  /** Plan again now, for the same body (after a restore, the engine has changed). */
  refresh: () => void;
}

/**
 * Asks the service for the plan of `body` on every change, debounced; a newer answer wins over
 * an older one still in flight. `blocked` (the form has errors of its own, or no point yet)
 * asks nothing: the service would refuse the body.
 */
export function useRestorePlan(pointId: string | null, body: RestoreRequestBody | null, blocked: 'invalid' | 'waiting' | null): RestorePlanState {
  const { client } = useApp();
  const key = pointId && body ? JSON.stringify([pointId, body]) : null;
  const [plan, setPlan] = useState<RestorePlanView | null>(null);
  const [planKey, setPlanKey] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [inFlight, setInFlight] = useState(false);
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  const latest = useRef({ pointId, body });
  latest.current = { pointId, body };

  useEffect(() => {
    if (blocked || !key) {
      seq.current++; // an answer still in flight is for another body
      setInFlight(false);
      return undefined;
    }
    const mine = ++seq.current;
    setInFlight(true);
    const timer = setTimeout(() => {
      const { pointId: p, body: b } = latest.current;
      if (!p || !b) return;
      client.restorePlan(p, b).then(
        (res) => {
          if (mine !== seq.current) return;
          setPlan(res);
          setPlanKey(key);
          setError(null);
          setInFlight(false);
        },
        (err: unknown) => {
          if (mine !== seq.current) return;
          setError(err);
          setPlanKey(null);
          setInFlight(false);
        },
      );
    }, PLAN_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [client, key, blocked, tick]);

  const current = key !== null && planKey === key && !inFlight;
  let status: PlanStatus;
  if (blocked) status = blocked;
  else if (inFlight || (!current && !error)) status = 'planning';
  else if (error) status = 'failed';
  else status = 'ready';
  return { status, plan, current, error, refresh: () => setTick((n) => n + 1) };
}
