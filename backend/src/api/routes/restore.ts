import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors';
import type { RestoreRequestBody } from '../../restore';
import type { StartRestoreResponse } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { parseRestoreBody, pointIdParam } from '../validate';
import { visibleOr404, visiblePointOr404 } from '../visibility';

/**
 * Restore routes: the plan the dialog shows (nothing written), and the job that carries it
 * out. The caller must see the point's VM, and the VM the disks go to; the objects are created
 * with the service account, inside what the plan allows.
 */
export function restoreRoutes(deps: ApiDeps): Router {
  const r = Router();

  const prepare = async (req: Request, res: Response) => {
    const pointId = pointIdParam(req.params['pointId']);
    const body: RestoreRequestBody = parseRestoreBody(req.body);
    const point = await visiblePointOr404(deps, res, pointId);
    if (body.attachToVmId) await visibleOr404(deps, res, body.attachToVmId);
    const visible = new Set((await deps.auth.visibleVms(principalOf(res))).map((v) => v.id));
    const plan = await deps.restore.planView(pointId, body, visible, principalOf(res).userName);
    return { pointId, body, point, plan };
  };

  r.post(
    '/points/:pointId/restore/plan',
    route(async (req, res) => {
      const { plan } = await prepare(req, res);
      res.json(plan);
    }),
  );

  r.post(
    '/points/:pointId/restore',
    route(async (req, res) => {
      const { pointId, body, point, plan } = await prepare(req, res);
      if (!plan.ok) {
        const errors = plan.problems.filter((p) => p.severity === 'error');
        throw new AppError('RESTORE_REFUSED', `the restore cannot go ahead: ${errors.map((p) => p.message).join('; ')}`, { details: { problems: errors } });
      }
      const user = principalOf(res);
      const { job } = deps.queue.submit({
        vmId: point.vmId,
        vmName: point.vmName,
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        spec: { v: 1, kind: 'restore', pointId, request: body, target: plan.vm?.name ?? plan.attachToVmId ?? null },
      });
      deps.log.info({ jobId: job.id, vmId: point.vmId, pointId, user: user.userName }, 'restore queued');
      deps.serviceAudit?.record('restore', { actor: user.userName, pointId, vmKey: point.vmId, details: { jobId: job.id, mode: body.mode, target: job.restore?.target ?? null, ...(body.attachToVmId ? { vmIds: [body.attachToVmId] } : {}) } });
      const out: StartRestoreResponse = { job, plan };
      res.status(202).json(out);
    }),
  );
  return r;
}
