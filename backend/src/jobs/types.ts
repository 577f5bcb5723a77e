import type { Job, JobKind, JobLogEntry, JobResult, JobUser, RunnerProgress } from './model';

/** The fields of a job that change after it is queued. */
export type JobPatch = Partial<Pick<Job, 'state' | 'startedAt' | 'finishedAt' | 'cancelRequested' | 'progress' | 'result' | 'error' | 'hostId'>>;

/** What the queue needs from its store (JobsTable, in the catalog's file, satisfies it). */
export interface JobStore {
  insertJob(job: Job): void;
  updateJob(id: string, patch: JobPatch): Job;
  getJob(id: string): Job | undefined;
  /** queued + running, oldest first */
  activeJobs(): Job[];
  appendLog(jobId: string, entry: JobLogEntry): void;
  setJobMeta(jobId: string, patch: Record<string, unknown>): void;
  jobMeta(jobId: string): Record<string, unknown>;
  markRunningInterrupted(now: string): Job[];
}

export interface SubmitJob {
  /** Default 'backup'. */
  kind?: JobKind;
  vmId: string;
  vmName: string;
  /** Engine host the VM runs on now; null when it is down (the engine places it at start). */
  hostId: string | null;
  requestedBy: JobUser;
  forceFull: boolean;
  /** Restore jobs: what is restored (shown in lists). */
  restore?: Job['restore'];
  /** Kept with the job for its runner (a restore's request), so a job queued before a restart
   *  runs as asked after it. */
  meta?: Record<string, unknown>;
}

export interface JobRunContext {
  readonly job: Job;
  /** Aborted when the job is cancelled or the service shuts down: the runner's own cleanup
   *  (`finally`) must still run before its promise settles. */
  readonly signal: AbortSignal;
  /** What was stored with the job when it was submitted (SubmitJob.meta), and facts remembered since. */
  readonly meta: Record<string, unknown>;
  progress(p: RunnerProgress): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Facts that must outlive this process (e.g. "the VM was started for this job"). */
  remember(patch: Record<string, unknown>): void;
}

export type JobRunner = (ctx: JobRunContext) => Promise<JobResult>;

export interface JobLimits {
  /** Running jobs in all. */
  global: number;
  /** Running jobs per engine host (VMs that are down count under one "unplaced" host). */
  perHost: number;
}
