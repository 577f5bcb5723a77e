/**
 * The job queue's seams: the store it keeps jobs in, what a submitter gives it, and what a
 * runner (the code of one job kind) receives and returns.
 */
import type { Job, JobKind, JobLogEntry, JobResult, JobUser, RunnerProgress } from './model';
import type { JobFacts, JobSpec, SpecOf } from './spec';

/** The fields of a job that change after it is queued. */
export type JobPatch = Partial<Pick<Job, 'state' | 'startedAt' | 'finishedAt' | 'cancelRequested' | 'progress' | 'result' | 'error' | 'hostId'>>;

/** What the queue needs from its store (JobsTable, in the catalog's file, satisfies it). */
export interface JobStore {
  /** The job and its spec, in one write. */
  insertJob(job: Job, spec: JobSpec): void;
  updateJob(id: string, patch: JobPatch): Job;
  getJob(id: string): Job | undefined;
  /** queued + running, oldest first */
  activeJobs(): Job[];
  appendLog(jobId: string, entry: JobLogEntry): void;
  jobSpec(jobId: string): JobSpec;
  /** Replaces the spec of a job that is still queued (nothing has read it yet); false when the
   *  job has started or ended meanwhile. */
  updateQueuedSpec(jobId: string, spec: JobSpec): boolean;
  jobFacts(jobId: string): JobFacts;
  /** Merges the facts (shallow). */
  rememberFacts(jobId: string, patch: JobFacts): void;
  markRunningInterrupted(now: string): Job[];
}

export interface SubmitJob {
  vmId: string;
  vmName: string;
  /** Engine host the VM runs on now; null when it is down (the engine places it at start). */
  hostId: string | null;
  requestedBy: JobUser;
  spec: JobSpec;
}

export interface JobRunContext<S extends JobSpec = JobSpec> {
  readonly job: Job;
  readonly spec: S;
  /** Facts remembered by an earlier run of this job (none: it ran in no earlier process). */
  readonly facts: JobFacts;
  /** Aborted when the job is cancelled or the service shuts down: the runner's own cleanup
   *  (`finally`) must still run before its promise settles. */
  readonly signal: AbortSignal;
  progress(p: RunnerProgress): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Facts that must outlive this process (e.g. "the VM was started for this job"). */
  remember(patch: JobFacts): void;
}

export type JobRunner<S extends JobSpec = JobSpec> = (ctx: JobRunContext<S>) => Promise<JobResult>;

/** One runner per kind, each given its own kind of spec. */
export type KindRunners = { [K in JobKind]: JobRunner<SpecOf<K>> };

export function byKind(runners: KindRunners): JobRunner {
  return (ctx) => {
    const spec = ctx.spec;
    switch (spec.kind) {
      case 'backup':
        return runners.backup({ ...ctx, spec });
      case 'restore':
        return runners.restore({ ...ctx, spec });
      case 'verify':
        return runners.verify({ ...ctx, spec });
      case 'bootcheck':
        return runners.bootcheck({ ...ctx, spec });
      case 'sync':
        return runners.sync({ ...ctx, spec });
    }
  };
}

export interface JobLimits {
  /** Running jobs in all. */
  global: number;
  /** Running jobs per engine host (VMs that are down count under one "unplaced" host). */
  perHost: number;
}
