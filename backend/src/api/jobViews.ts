import type { Response } from 'express';
import { REPOSITORY_JOB_VM_ID, type Job } from '../jobs';
import type { ApiDeps } from './deps';
import { visibleIds } from './visibility';

/**
 * A job as one caller may see it: with the live progress of a running job, and — for a
 * repository verify, which every user sees — with only the points of the VMs that caller may see.
 */

/** A running job's progress in the catalog lags by up to a couple of seconds: use the live one. */
export function withLiveProgress<T extends { id: string; state: string; progress: unknown } | undefined>(deps: Pick<ApiDeps, 'queue'>, job: T): T {
  if (!job || job.state !== 'running') return job;
  const live = deps.queue.progressOf(job.id);
  return live ? { ...job, progress: live } : job;
}

/** A repository verify job as this caller may see it: counts and point ids of visible VMs only. */
export async function verifyJobView(deps: ApiDeps, res: Response, job: Job): Promise<Job> {
  if (!isRepositoryJob(job) || !job.result?.verified) return job;
  return repositoryJobFor(deps.catalog, job, await visibleIds(deps, res));
}

/** A repository verify job with only the points of the VMs in `visible`. */
export function repositoryJobFor(catalog: Pick<ApiDeps['catalog'], 'jobFacts' | 'getPoint'>, job: Job, visible: ReadonlySet<string>): Job {
  const v = job.result?.verified;
  if (!isRepositoryJob(job) || !job.result || !v) return job;
  const vmKeys = catalog.jobFacts(job.id).verifiedVmKeys ?? {};
  const mine = (id: string): boolean => {
    const vm = vmKeys[id] ?? catalog.getPoint(id)?.vmId;
    return vm !== undefined && visible.has(vm);
  };
  const damaged = v.damaged.filter(mine);
  return {
    ...job,
    result: {
      ...job.result,
      warnings: job.result.warnings.filter((w) => damaged.some((id) => w.includes(id))),
      verified: { points: Object.keys(vmKeys).filter(mine).length, damaged, quarantined: v.quarantined, cleared: v.cleared.filter(mine) },
    },
  };
}

/** Whether a job exists for a caller who may not see its VM: a repository verify does. */
export function isRepositoryJob(job: Job): boolean {
  return job.kind === 'verify' && job.vmId === REPOSITORY_JOB_VM_ID;
}
