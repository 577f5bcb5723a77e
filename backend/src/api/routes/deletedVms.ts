import { Router } from 'express';
import type { DeletedVmList } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';

/** The "Deleted VMs" view: backup admins only (api/deletedVms.ts). */
export function deletedVmsRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get(
    '/deleted-vms',
    route(async (_req, res) => {
      await deps.permits.requireBackupAdmin(principalOf(res), 'see the deleted vms');
      const body: DeletedVmList = { vms: await deps.deleted.list() };
      res.json(body);
    }),
  );
  return r;
}
