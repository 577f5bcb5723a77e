import type { Job, JobProgress, JobState } from '../../../backend/src/api/contract';

/** Kept here (the UI bundles nothing of the backend): mirrors TERMINAL_JOB_STATES of the contract. */
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function isActive(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running';
}

/**
 * A job's completion in percent, 0–100, never going back for one job: a succeeded job is 100;
 * a running one is bytesDone/bytesTotal, capped at 99 until the job says it is done (the
 * total grows while extents become known, and committing the point comes after the last byte).
 */
export function jobPercent(job: Pick<Job, 'state' | 'progress'>): number {
  if (job.state === 'succeeded') return 100;
  const p = job.progress;
  if (!p) return 0;
  if (p.phase === 'done') return 100;
  if (p.bytesTotal <= 0) return 0;
  const pct = Math.floor((p.bytesDone / p.bytesTotal) * 100);
  return Math.max(0, Math.min(99, pct));
}

/**
 * Seconds left: the service's estimate when it gives one, else from the rate; null when unknown.
 */
export function jobEtaSeconds(p: JobProgress | null): number | null {
  if (!p) return null;
  if (p.etaSeconds !== null && Number.isFinite(p.etaSeconds) && p.etaSeconds >= 0) return p.etaSeconds;
  if (p.rateBytesPerSec > 0 && p.bytesTotal > 0) return Math.max(0, (p.bytesTotal - p.bytesDone) / p.rateBytesPerSec);
  return null;
}

/** Duration of a finished (or running, up to `now`) job in seconds; null when it never started. */
export function jobDurationSeconds(job: Pick<Job, 'startedAt' | 'finishedAt'>, now = Date.now()): number | null {
  if (!job.startedAt) return null;
  const start = Date.parse(job.startedAt);
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) return null;
  return Math.max(0, (end - start) / 1000);
}
