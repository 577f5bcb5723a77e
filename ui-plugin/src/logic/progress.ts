// Job progress, pure: terminal states, the bar's percent across a restore's phases, ETA, duration.
import type { Job, JobPhase, JobProgress, JobState } from '../../../backend/src/api/contract';

/** Kept here (the UI bundles nothing of the backend): mirrors TERMINAL_JOB_STATES of the contract. */
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function isActive(job: Pick<Job, 'state'>): boolean {
  return job.state === 'queued' || job.state === 'running';
}

/**
 * Where each restore phase sits on the job's bar, in percent: [start, end). The service counts
 * bytes per phase (the upload goes to the total, then reading the disks back for verification
 * starts again from 0), so the bar places each phase's bytes in its own stretch.
 */
const RESTORE_SPANS: Partial<Record<JobPhase, [number, number]>> = {
  queued: [0, 0],
  planning: [0, 1],
  'creating-disks': [1, 3],
  // disks are uploaded and finalized one after the other; the bytes count over all of them
  uploading: [3, 72],
  finalizing: [3, 72],
  verifying: [72, 96],
  'creating-vm': [96, 99],
  attaching: [96, 99],
};

/**
 * A job's completion in percent, 0–100, never going back for one job: a succeeded job is 100;
 * a running backup is bytesDone/bytesTotal, capped at 99 until the job says it is done (the
 * total grows while extents become known, and committing the point comes after the last byte);
 * a running restore is its phase's stretch of the bar, filled by that phase's bytes.
 */
export function jobPercent(job: Pick<Job, 'state' | 'progress'> & { kind?: Job['kind'] }): number {
  if (job.state === 'succeeded') return 100;
  const p = job.progress;
  if (!p) return 0;
  if (p.phase === 'done') return 100;
  const fraction = p.bytesTotal > 0 ? Math.max(0, Math.min(1, p.bytesDone / p.bytesTotal)) : 0;
  if (job.kind === 'restore') {
    const span = RESTORE_SPANS[p.phase];
    if (span) return Math.min(99, Math.floor(span[0] + (span[1] - span[0]) * fraction));
  }
  if (p.bytesTotal <= 0) return 0;
  return Math.max(0, Math.min(99, Math.floor(fraction * 100)));
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
