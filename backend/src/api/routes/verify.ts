import { Router } from 'express';
import { AppError } from '../../errors';
import { REPOSITORY_JOB_VM_ID } from '../../jobs';
import type { StartVerifyResponse } from '../contract';
import type { ApiDeps } from '../deps';
import { verifyJobView } from '../jobViews';
import { principalOf, route } from '../middleware';
import { pointIdParam } from '../validate';
import { NEEDS } from '../access';
import { visiblePointOr404 } from '../visibility';

/**
 * Verify jobs on demand. A point's verify: `backup_disk` on the point's VM. The repository's
 * verify: backup admins (it reads every VM's points); its job is shown to every user, with the
 * points of the VMs each may see only (damage to a chunk shared by several VMs concerns all).
 */
export function verifyRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.post(
    '/points/:pointId/verify',
    route(async (req, res) => {
      const pointId = pointIdParam(req.params['pointId']);
      emptyBody(req.body);
      const point = await visiblePointOr404(deps, res, pointId);
      const user = principalOf(res);
      // a deleted VM has no permits left: its backup admins verify its points before restoring
      if (!(await deps.deleted.adminSeesDeleted(res, point.vmId))) {
        await deps.permits.require(user, `verify a restore point of vm ${point.vmName}`, [{ obj: { kind: 'vm', id: point.vmId }, permits: NEEDS.backup, label: `vm ${point.vmName}` }]);
      }
      const { job } = deps.queue.submit({
        vmId: point.vmId,
        vmName: point.vmName,
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        spec: { v: 1, kind: 'verify', target: { pointId }, origin: null },
      });
      deps.log.info({ jobId: job.id, pointId, user: user.userName }, 'verify of a point queued');
      const body: StartVerifyResponse = { job };
      res.status(202).json(body);
    }),
  );

  r.post(
    '/repository/verify',
    route(async (req, res) => {
      const user = principalOf(res);
      // who asks first: a caller who may not verify learns nothing from the body's check
      await deps.permits.requireBackupAdmin(user, 'verify the whole repository');
      emptyBody(req.body);
      // one repository verify at a time: a second request joins the pending one
      const pending = deps.catalog.listJobs({ vmIds: [REPOSITORY_JOB_VM_ID], states: ['queued', 'running'], limit: 1 }).jobs.find((j) => j.kind === 'verify');
      if (pending) {
        const body: StartVerifyResponse = { job: await verifyJobView(deps, res, pending) };
        res.status(200).json(body);
        return;
      }
      const { job } = deps.queue.submit({
        vmId: REPOSITORY_JOB_VM_ID,
        vmName: 'repository',
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        spec: { v: 1, kind: 'verify', target: { repository: true }, origin: null },
      });
      deps.log.info({ jobId: job.id, user: user.userName }, 'verify of the repository queued');
      const body: StartVerifyResponse = { job };
      res.status(202).json(body);
    }),
  );
  return r;
}

function emptyBody(body: unknown): void {
  if (body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)) return;
  throw new AppError('BAD_REQUEST', 'request body: a verify takes no options (send no body or {})');
}
