// The pure reducer of a page's live jobs state (REST lists plus the event stream).
import type { Job, JobProgress, PointSummary, ServerMessage } from '../../../backend/src/api/contract';
import { isTerminal } from './progress';

/**
 * The live view of jobs a page holds: filled from REST lists and the event socket's `snapshot`,
 * then kept current by `job` and `progress` events. Pure reducer; the React hook only stores it.
 */
export interface JobsState {
  byId: Record<string, Job>;
  /** Bumped on every `point` event: pages reload their point lists when it changes. */
  pointsVersion: number;
  lastPoint: PointSummary | null;
}

export type JobsAction =
  | { type: 'loaded'; jobs: Job[] }
  | { type: 'message'; message: ServerMessage };

export const initialJobsState: JobsState = { byId: {}, pointsVersion: 0, lastPoint: null };

/**
 * Which of two reports of the same job is newer. A terminal state never goes back to an active
 * one (a late `running` event after `succeeded` is stale); otherwise the later message wins.
 */
function merge(prev: Job | undefined, next: Job): Job {
  if (!prev) return next;
  if (isTerminal(prev.state) && !isTerminal(next.state)) return prev;
  if (prev.state === 'running' && next.state === 'queued') return prev;
  // a job message may carry an older progress than a progress event we already applied
  const progress = newerProgress(prev.progress, next.progress);
  return { ...next, progress };
}

function newerProgress(a: JobProgress | null, b: JobProgress | null): JobProgress | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.updatedAt) >= Date.parse(a.updatedAt) ? b : a;
}

export function jobsReducer(state: JobsState, action: JobsAction): JobsState {
  if (action.type === 'loaded') {
    const byId = { ...state.byId };
    for (const j of action.jobs) byId[j.id] = merge(byId[j.id], j);
    return { ...state, byId };
  }
  const m = action.message;
  switch (m.type) {
    case 'snapshot': {
      const byId = { ...state.byId };
      for (const j of m.jobs) byId[j.id] = merge(byId[j.id], j);
      return { ...state, byId };
    }
    case 'job':
      return { ...state, byId: { ...state.byId, [m.job.id]: merge(state.byId[m.job.id], m.job) } };
    case 'progress': {
      const job = state.byId[m.jobId];
      // progress of a job we have not seen yet: the `job` event or the next list brings it
      if (!job || isTerminal(job.state)) return state;
      const progress = newerProgress(job.progress, m.progress);
      if (progress === job.progress) return state;
      return { ...state, byId: { ...state.byId, [m.jobId]: { ...job, state: 'running', progress } } };
    }
    case 'point':
      return { ...state, pointsVersion: state.pointsVersion + 1, lastPoint: m.point };
    default:
      return state;
  }
}

/** Jobs newest first (by creation time), optionally of one VM. */
export function jobsSorted(state: JobsState, vmId?: string): Job[] {
  return Object.values(state.byId)
    .filter((j) => vmId === undefined || j.vmId === vmId)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
}

/**
 * The state transitions worth a WebAdmin toast: a job that was known as active and is now
 * terminal. Returns the jobs that just finished.
 */
export function finishedJobs(before: JobsState, after: JobsState): Job[] {
  const out: Job[] = [];
  for (const [id, job] of Object.entries(after.byId)) {
    const prev = before.byId[id];
    if (prev && !isTerminal(prev.state) && isTerminal(job.state)) out.push(job);
  }
  return out;
}
