// The page's live view of jobs from the event stream (logic/jobsState.ts's reducer) and the versions loaders refetch on.
import { useEffect, useReducer, useState } from 'react';
import type { Job } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { initialJobsState, jobsReducer, type JobsState } from '../logic/jobsState';
import { isTerminal } from '../logic/progress';
import type { StreamStatus } from '../services/eventStream';

export interface Live {
  jobs: JobsState;
  status: StreamStatus;
  /** Bumped each time the socket (re)connects: loaders refetch, so a page recovers by itself. */
  onlineVersion: number;
  /** Bumped when a job reaches a terminal state: VM summaries (last job, chain) change then. */
  finishedVersion: number;
  addJobs: (jobs: Job[]) => void;
}

export function useLive(): Live {
  const { stream } = useApp();
  const [jobs, dispatch] = useReducer(jobsReducer, initialJobsState);
  const [status, setStatus] = useState<StreamStatus>(stream.status);
  const [onlineVersion, setOnline] = useState(0);
  const [finishedVersion, setFinished] = useState(0);

  useEffect(() => {
    const offMsg = stream.subscribe((message) => {
      dispatch({ type: 'message', message });
      if (message.type === 'job' && isTerminal(message.job.state)) setFinished((n) => n + 1);
    });
    const offStatus = stream.onStatus((s) => {
      setStatus(s);
      if (s === 'open') setOnline((n) => n + 1);
    });
    setStatus(stream.status);
    return () => {
      offMsg();
      offStatus();
    };
  }, [stream]);

  return { jobs, status, onlineVersion, finishedVersion, addJobs: (list) => dispatch({ type: 'loaded', jobs: list }) };
}
