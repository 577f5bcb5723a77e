// The job history of a page (REST pages merged into the live state), refetched when the socket reconnects.
import { useEffect, useState } from 'react';
import type { Job } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { jobsSorted } from '../logic/jobsState';
import { useAction, type ActionState } from './useAction';
import type { Live } from './useLive';

const PAGE = 50;

export interface JobHistory {
  jobs: Job[];
  /** The first page has arrived (until then counts drawn from `jobs` would be made up). */
  loaded: boolean;
  error: unknown;
  /** "Load older jobs": the next page (busy while it loads); undefined when none is left. */
  loadOlder: ActionState | undefined;
  reload: () => void;
}

/**
 * Jobs from the REST list (newest first, older pages on demand) merged into the live state, so
 * events keep every listed job current. Refetched when the socket (re)connects.
 */
export function useJobHistory(live: Live, vmId?: string): JobHistory {
  const { client } = useApp();
  const [error, setError] = useState<unknown>(null);
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [tick, setTick] = useState(0);
  const { addJobs } = live;

  useEffect(() => {
    let stale = false;
    client.jobList({ vmId, limit: PAGE }).then(
      (res) => {
        if (stale) return;
        addJobs(res.jobs);
        setNextBefore(res.nextBefore);
        setLoaded(true);
        setError(null);
      },
      (err: unknown) => {
        if (!stale) setError(err);
      },
    );
    return () => {
      stale = true;
    };
    // addJobs is a new function each render; the reducer's dispatch behind it is stable
  }, [client, vmId, live.onlineVersion, tick]);

  const loadOlder = useAction(
    async () => (nextBefore ? client.jobList({ vmId, limit: PAGE, before: nextBefore }) : null),
    (res) => {
      if (!res) return;
      addJobs(res.jobs);
      setNextBefore(res.nextBefore);
    },
    setError,
  );

  return { jobs: jobsSorted(live.jobs, vmId), loaded, error, loadOlder: nextBefore ? loadOlder : undefined, reload: () => setTick((n) => n + 1) };
}
