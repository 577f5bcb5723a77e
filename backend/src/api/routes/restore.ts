import { Router, type Request, type Response } from 'express';
import type { PermitObject } from '../../engine';
import { AppError } from '../../errors';
import type { RestoreInventory, RestorePlanView, RestoreRequestBody, UsableTargets } from '../../restore';
import type { StartRestoreResponse } from '../contract';
import { NEEDS } from '../access';
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
 * the disks to a VM, `configure_vm_storage` on it. A user's plan is made from the clusters and
 * domains they may use: it picks, names and offers only those. Bringing a VM back under its
 * original ids is for backup admins. The objects are then created with the service account,
 * inside what the plan allows.
 */
export function restoreRoutes(deps: ApiDeps): Router {
  const r = Router();

  const prepare = async (req: Request, res: Response) => {
    const pointId = pointIdParam(req.params['pointId']);
    const body: RestoreRequestBody = parseRestoreBody(req.body);
    const point = await visiblePointOr404(deps, res, pointId);
    if (body.attachToVmId) await visibleOr404(deps, res, body.attachToVmId);
    const user = principalOf(res);
    // a user's plan is made from what they may use: it names no cluster or domain of others
    let usable: UsableTargets | undefined;
    const admin = await deps.permits.isBackupAdmin(user);
    const plan = await deps.restore.planView(pointId, body, {
      visibleVmIds: await visibleIds(deps, res),
      holder: user.userName,
      ...(admin ? {} : { usable: async (inv: RestoreInventory) => (usable = await usableIn(deps, res, inv)) }),
    });
    return { pointId, body, point, plan, usable };
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
      const { pointId, body, point, plan, usable } = await prepare(req, res);
      const user = principalOf(res);
      await mayRestore(deps, res, plan, body, usable);
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

/** What creating a VM and its disks takes, as the engine itself checks it. */
const CREATE_VM = ['create_vm'] as const;
const CREATE_DISK = ['create_disk'] as const;

/**
 * FORBIDDEN naming each permit the caller lacks for what this plan creates. The plan of a user
 * (`usable` given) only picks what they may use: a cluster or domain they asked for by id and may
 * not use is named by that id, and when nothing is usable at all the refusal says "on any
 * cluster" / "on any storage domain" — never the engine's names.
 */
async function mayRestore(deps: ApiDeps, res: Response, plan: RestorePlanView, body: RestoreRequestBody, usable: UsableTargets | undefined): Promise<void> {
  const user = principalOf(res);
  if (body.regenerateIds === false) {
    await deps.permits.requireBackupAdmin(user, 'restore a vm under its original ids');
    return;
  }
  const missing: Array<{ permit: string; object: string }> = [];
  const wantsVm = body.mode === 'vm' && body.fromOvf !== false;
  if (usable) {
    // what the caller asked for by id and may not use: named by that id, as they sent it
    if (wantsVm && body.clusterId !== undefined && !usable.clusterIds.has(body.clusterId)) missing.push({ permit: CREATE_VM[0], object: `cluster ${body.clusterId}` });
    else if (wantsVm && usable.clusterIds.size === 0) missing.push({ permit: CREATE_VM[0], object: 'any cluster' });
    const asked = new Set((body.disks ?? []).flatMap((d) => (d.include && d.storageDomainId !== undefined && !usable.storageDomainIds.has(d.storageDomainId) ? [d.storageDomainId] : [])));
    for (const id of asked) missing.push({ permit: CREATE_DISK[0], object: `storage domain ${id}` });
    if (usable.storageDomainIds.size === 0 && asked.size === 0) missing.push({ permit: CREATE_DISK[0], object: 'any storage domain' });
  }
  const needs: Needed[] = [];
  if (plan.vm) needs.push({ obj: { kind: 'cluster', id: plan.vm.clusterId }, permits: CREATE_VM, label: `cluster ${plan.vm.clusterName}` });
  for (const sd of new Map(plan.disks.map((d) => [d.storageDomainId, d.storageDomainName]))) {
    needs.push({ obj: { kind: 'storagedomain', id: sd[0] }, permits: CREATE_DISK, label: `storage domain ${sd[1]}` });
  }
  if (plan.attachToVmId) {
    const target = plan.targets.vms.find((v) => v.id === plan.attachToVmId);
    needs.push({ obj: { kind: 'vm', id: plan.attachToVmId }, permits: NEEDS.restoreInto, label: `vm ${target?.name ?? plan.attachToVmId}` });
  }
  const action = plan.vm ? `restore a vm into cluster ${plan.vm.clusterName}` : wantsVm ? 'restore a vm' : 'restore disks';
  if (missing.length === 0) {
    await deps.permits.require(user, action, needs);
    return;
  }
  // the same refusal Permits.require makes, with the "any" lines first
  for (const n of needs) {
    const held = await deps.permits.on(user, n.obj);
    for (const permit of n.permits) if (!held.has(permit)) missing.push({ permit, object: n.label });
  }
  throw new AppError('FORBIDDEN', `${user.userName} may not ${action}: the engine grants ${user.userName} no ${missing.map((m) => `${m.permit} on ${m.object}`).join(', ')}`, { details: { missing } });
}

/** The clusters and storage domains of the engine the caller may create in. */
async function usableIn(deps: ApiDeps, res: Response, inv: RestoreInventory): Promise<UsableTargets> {
  const user = principalOf(res);
  const may = (obj: PermitObject, permits: readonly string[]): Promise<boolean> => deps.permits.has(user, { obj, permits });
  const clusters = await Promise.all(inv.clusters.map(async (c) => ((await may({ kind: 'cluster', id: c.id }, CREATE_VM)) ? [c.id] : [])));
  const domains = await Promise.all(inv.storageDomains.map(async (s) => ((await may({ kind: 'storagedomain', id: s.id }, CREATE_DISK)) ? [s.id] : [])));
  return { clusterIds: new Set(clusters.flat()), storageDomainIds: new Set(domains.flat()) };
}
