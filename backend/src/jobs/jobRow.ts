import type { Job, JobError, JobProgress, JobResult } from './model';

/** A `jobs` row as SQLite returns it (booleans are 0/1, objects are JSON text). */
export interface JobRow {
  id: string;
  kind: string;
  state: string;
  vm_id: string;
  vm_name: string;
  host_id: string | null;
  requested_by_id: string;
  requested_by_name: string;
  force_full: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested: number;
  progress: string | null;
  result: string | null;
  error: string | null;
  restore: string | null;
}

/** The named parameters of a full row write (`meta` is written separately). */
export type JobParams = JobRow;

export function jobToRow(job: Job): JobParams {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    vm_id: job.vmId,
    vm_name: job.vmName,
    host_id: job.hostId,
    requested_by_id: job.requestedBy.id,
    requested_by_name: job.requestedBy.name,
    force_full: job.forceFull ? 1 : 0,
    created_at: job.createdAt,
    started_at: job.startedAt,
    finished_at: job.finishedAt,
    cancel_requested: job.cancelRequested ? 1 : 0,
    progress: toJson(job.progress),
    result: toJson(job.result),
    error: toJson(job.error),
    restore: toJson(job.restore),
  };
}

/** Rows are only ever written by jobToRow, so their values are trusted as the contract's. */
export function rowToJob(r: JobRow): Job {
  return {
    id: r.id,
    kind: r.kind as Job['kind'],
    state: r.state as Job['state'],
    vmId: r.vm_id,
    vmName: r.vm_name,
    hostId: r.host_id,
    requestedBy: { id: r.requested_by_id, name: r.requested_by_name },
    forceFull: r.force_full !== 0,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    cancelRequested: r.cancel_requested !== 0,
    progress: fromJson<JobProgress>(r.progress),
    result: fromJson<JobResult>(r.result),
    error: fromJson<JobError>(r.error),
    restore: fromJson<NonNullable<Job['restore']>>(r.restore),
  };
}

function toJson(v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

function fromJson<T>(s: string | null): T | null {
  return s === null ? null : (JSON.parse(s) as T);
}
