import { Router, type Response } from 'express';
import { AppError } from '../../errors';
import type { Job, JobList } from '../../jobs';
import type { JobDetail } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { jobIdParam, parseJobsQuery } from '../validate';
import { isRepositoryJob, verifyJobView, withLiveProgress } from '../jobViews';
import { NEEDS } from '../access';
import { visibleIds } from '../visibility';
import { REPOSITORY_JOB_VM_ID } from '../../jobs';

export function jobsRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.get(
    '/jobs',
    route(async (req, res) => {
      const q = parseJobsQuery(req.query);
      // only jobs of VMs the caller may see, whatever the filter asks
      const visible = await visibleIds(deps, res);
      // a backup admin follows the jobs of deleted VMs too (the restore bringing one back);
      // repository verifies concern every user (their results show each caller their own points)
      const all = [...visible, ...(await deps.deleted.idsSeenBy(principalOf(res), visible)), REPOSITORY_JOB_VM_ID];
      const vmIds = q.vmId ? all.filter((id) => id === q.vmId) : all;
      const page = vmIds.length === 0 ? { jobs: [], nextBefore: null } : deps.catalog.listJobs({ ...q, vmIds });
      const jobs = await Promise.all(page.jobs.map((j) => verifyJobView(deps, res, withLiveProgress(deps, j))));
      const body: JobList = { jobs, nextBefore: page.nextBefore };
      res.json(body);
    }),
  );

  r.get(
    '/jobs/:jobId',
    route(async (req, res) => {
      const job = await visibleJob(deps, res, jobIdParam(req.params['jobId']));
      const body: JobDetail = { ...(await verifyJobView(deps, res, withLiveProgress(deps, job))), log: deps.catalog.jobLog(job.id) };
      res.json(body);
    }),
  );

  r.post(
    '/jobs/:jobId/cancel',
    route(async (req, res) => {
      const job = await visibleJob(deps, res, jobIdParam(req.params['jobId']));
      const user = principalOf(res);
      await mayCancel(deps, res, job);
      const after = deps.queue.cancel(job.id, { id: user.userId, name: user.userName });
      deps.log.info({ jobId: job.id, vmId: job.vmId, user: user.userName }, 'job cancel requested');
      res.json(await verifyJobView(deps, res, after));
    }),
  );

  return r;
}

/**
 * One's own backup or verify may be cancelled with `backup_disk` on its VM (what it took to
 * start it), one's own restore always; anyone else's job, and any repository-wide one, only by a
 * backup admin (a viewer must not stop an admin's verify).
 */
async function mayCancel(deps: ApiDeps, res: Response, job: Job): Promise<void> {
  const user = principalOf(res);
  const own = job.requestedBy.id === user.userId;
  if (own && job.kind === 'restore') return;
  if (own && !isRepositoryJob(job)) {
    await deps.permits.require(user, `cancel the ${job.kind} of vm ${job.vmName}`, [{ obj: { kind: 'vm', id: job.vmId }, permits: NEEDS.backup, label: `vm ${job.vmName}` }]);
    return;
  }
  await deps.permits.requireBackupAdmin(user, own ? 'cancel a repository verify' : `cancel a job ${job.requestedBy.name} started`);
}

/** A job exists for the caller only if its VM does — or, for a backup admin, did. */
async function visibleJob(deps: ApiDeps, res: Response, jobId: string): Promise<Job> {
  const job = deps.catalog.getJob(jobId);
  if (!job) throw new AppError('JOB_NOT_FOUND', `job ${jobId} not found`);
  if (isRepositoryJob(job)) return job;
  if ((await deps.auth.visibleVm(principalOf(res), job.vmId)) || (await deps.deleted.adminSeesDeleted(res, job.vmId))) return job;
  throw new AppError('JOB_NOT_FOUND', `job ${jobId} not found`);
}
