import { Router, type Request, type Response } from 'express';
import type { PermitObject } from '../../engine';
import { AppError } from '../../errors';
import type { RestorePlanView, RestoreRequestBody } from '../../restore';
import type { StartRestoreResponse } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import type { Needed } from '../permits';
import { parseRestoreBody, pointIdParam } from '../validate';
import { visibleOr404, visibleIds, visiblePointOr404 } from '../visibility';

/**
 * Restore routes: the plan the dialog shows (nothing written), and the job that carries it out.
 * The caller must see the point's VM (a backup admin also the points of a VM the engine no longer
 * has), and hold what the engine itself would demand of them for what the restore creates:
 * `create_vm` on the target cluster and `create_disk` on each target storage domain; to attach
 * the disks to a VM, `configure_vm_storage` on it. The plan offers only the clusters and domains
 * the caller may use. Bringing a VM back under its original ids is for backup admins. The objects
 * are then created with the service account, inside what the plan allows.
 */
export function restoreRoutes(deps: ApiDeps): Router {
  const r = Router();

  const prepare = async (req: Request, res: Response) => {
    const pointId = pointIdParam(req.params['pointId']);
    const body: RestoreRequestBody = parseRestoreBody(req.body);
    const point = await visiblePointOr404(deps, res, pointId);
    if (body.attachToVmId) await visibleOr404(deps, res, body.attachToVmId);
    const user = principalOf(res);
    const full = await deps.restore.planView(pointId, body, await visibleIds(deps, res), user.userName);
    const plan = (await deps.permits.isBackupAdmin(user)) ? full : await usableTargets(deps, res, full);
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
      const user = principalOf(res);
      await mayRestore(deps, res, plan, body);
      if (!plan.ok) {
        const errors = plan.problems.filter((p) => p.severity === 'error');
        throw new AppError('RESTORE_REFUSED', `the restore cannot go ahead: ${errors.map((p) => p.message).join('; ')}`, { details: { problems: errors } });
      }
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

/** FORBIDDEN naming each permit the caller lacks for what this plan creates. */
async function mayRestore(deps: ApiDeps, res: Response, plan: RestorePlanView, body: RestoreRequestBody): Promise<void> {
  const user = principalOf(res);
  if (body.regenerateIds === false) {
    await deps.permits.requireBackupAdmin(user, 'restore a vm under its original ids');
    return;
  }
  const needs: Needed[] = [];
  if (plan.vm) needs.push({ obj: { kind: 'cluster', id: plan.vm.clusterId }, permits: ['create_vm'], label: `cluster ${plan.vm.clusterName}` });
  for (const sd of new Map(plan.disks.map((d) => [d.storageDomainId, d.storageDomainName]))) {
    needs.push({ obj: { kind: 'storagedomain', id: sd[0] }, permits: ['create_disk'], label: `storage domain ${sd[1]}` });
  }
  if (plan.attachToVmId) {
    const target = plan.targets.vms.find((v) => v.id === plan.attachToVmId);
    needs.push({ obj: { kind: 'vm', id: plan.attachToVmId }, permits: ['configure_vm_storage'], label: `vm ${target?.name ?? plan.attachToVmId}` });
  }
  await deps.permits.require(user, plan.vm ? `restore a vm into cluster ${plan.vm.clusterName}` : 'restore disks', needs);
}

/** The plan's choices limited to the clusters and storage domains the caller may create in: a
 *  user is never shown the names of others. */
async function usableTargets(deps: ApiDeps, res: Response, plan: RestorePlanView): Promise<RestorePlanView> {
  const user = principalOf(res);
  const may = (obj: PermitObject, permit: string): Promise<boolean> => deps.permits.has(user, { obj, permits: [permit] });
  const clusters = await Promise.all(plan.targets.clusters.map(async (c) => ((await may({ kind: 'cluster', id: c.id }, 'create_vm')) ? c : null)));
  const domains = await Promise.all(plan.targets.storageDomains.map(async (s) => ((await may({ kind: 'storagedomain', id: s.id }, 'create_disk')) ? s : null)));
  return { ...plan, targets: { ...plan.targets, clusters: clusters.filter((c) => c !== null), storageDomains: domains.filter((s) => s !== null) } };
}
