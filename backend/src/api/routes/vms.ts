import { Router } from 'express';
import { chainHealth } from '../../backup';
import type { StartBackupResponse, VmList, VmSummary } from '../contract';
import type { ApiDeps } from '../deps';
import { NEEDS, requireOnVm, vmAccess } from '../access';
import { withLiveProgress } from '../jobViews';
import { principalOf, route } from '../middleware';
import { parsePointsQuery, parseStartBackup, vmIdParam } from '../validate';
import { mapLimit } from '../../util/mapLimit';
import { visibleOr404 } from '../visibility';

/** Engine requests one VM list may have in flight for the access flags. */
const ACCESS_LOOKUPS_IN_FLIGHT = 8;

export function vmsRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.get(
    '/vms',
    route(async (_req, res) => {
      const vms = await deps.auth.visibleVms(principalOf(res));
      const ids = vms.map((v) => v.id);
      const last = deps.catalog.lastPointByVm(ids);
      const jobs = deps.catalog.lastJobByVm(ids);
      const counts = deps.catalog.pointCountByVm(ids);
      const policies = await deps.policies.policiesByVm();
      const methods = await deps.nextMethods.forVms(vms, await deps.policies.methodsByVm());
      const damaged = (await deps.damage?.countByVm()) ?? new Map<string, number>();
      // one permission lookup per VM the cache does not answer: a few at a time, not hundreds at once
      const access = await mapLimit(vms, ACCESS_LOOKUPS_IN_FLIGHT, (vm) => vmAccess(deps, res, vm));
      const out: VmSummary[] = vms.map((vm, i) => ({
        id: vm.id,
        name: vm.name,
        description: vm.description,
        status: vm.status,
        clusterId: vm.clusterId ?? null,
        lastPoint: last.get(vm.id) ?? null,
        lastJob: withLiveProgress(deps, jobs.get(vm.id)) ?? null,
        pointCount: counts.get(vm.id) ?? 0,
        nextMethod: methods.get(vm.id) ?? 'qmp',
        chain: chainHealth(vm, last.get(vm.id), methods.get(vm.id) ?? 'qmp'),
        policies: policies.get(vm.id) ?? [],
        damagedPoints: damaged.get(vm.id) ?? 0,
        access: access[i]!,
      }));
      out.sort((a, b) => a.name.localeCompare(b.name));
      const body: VmList = { vms: out };
      res.json(body);
    }),
  );

  r.get(
    '/vms/:vmId/points',
    route(async (req, res) => {
      const vmId = vmIdParam(req.params['vmId']);
      const q = parsePointsQuery(req.query);
      // a deleted VM's points are the backup admins' to see
      if (!(await deps.auth.visibleVm(principalOf(res), vmId)) && !(await deps.deleted.adminSeesDeleted(res, vmId))) await visibleOr404(deps, res, vmId);
      // PointList, assembled from the PointSummary JSON the catalog stores
      const { rows, nextBefore } = deps.catalog.listPointsJson({ vmId, ...q });
      res.type('application/json').send(`{"points":[${rows.join(',')}],"nextBefore":${JSON.stringify(nextBefore)}}`);
    }),
  );

  r.post(
    '/vms/:vmId/backups',
    route(async (req, res) => {
      const vmId = vmIdParam(req.params['vmId']);
      const { full, method, consistency } = parseStartBackup(req.body);
      const user = principalOf(res);
      const vm = await visibleOr404(deps, res, vmId);
      await requireOnVm(deps, res, vm, NEEDS.backup, `back up vm ${vm.name}`);
      // a portal user's filtered view never shows the host: the service account's does
      const placed = await deps.serviceEngine.getVm(vmId);
      const { job, joined } = deps.queue.submit({
        vmId,
        vmName: vm.name,
        hostId: placed.hostId ?? null,
        requestedBy: { id: user.userId, name: user.userName },
        spec: { v: 1, kind: 'backup', forceFull: full, consistency, ...(method ? { method } : {}), lockDays: 0, origin: null },
      });
      deps.log.info({ jobId: job.id, vmId, user: user.userName, joined, method: method ?? 'default', consistency }, joined ? 'backup request joined a pending job' : 'backup queued');
      const body: StartBackupResponse = { job, joined };
      res.status(joined ? 200 : 202).json(body);
    }),
  );

  return r;
}
