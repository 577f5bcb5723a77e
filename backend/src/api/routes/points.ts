import { Router } from 'express';
import { pointDetail } from '../../catalog';
import type { ApiDeps } from '../deps';
import { route } from '../middleware';
import { pointIdParam } from '../validate';
import { visiblePointOr404 } from '../visibility';

export function pointsRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get(
    '/points/:pointId',
    route(async (req, res) => {
      const id = pointIdParam(req.params['pointId']);
      const summary = await visiblePointOr404(deps, res, id);
      const manifest = await deps.repository.readManifest(id);
      const damaged = (await deps.damage?.isDamaged(id)) ?? false;
      // the manifest has the lock as it is now (an operator may have changed it from the shell)
      const current = manifest.lockedUntil === summary.lockedUntil ? summary : { ...summary, lockedUntil: manifest.lockedUntil };
      res.json(pointDetail(current, manifest, (msg) => deps.log.warn({ pointId: id }, msg), damaged));
    }),
  );
  return r;
}
