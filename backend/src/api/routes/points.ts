import { Router } from 'express';
import { AppError } from '../../errors';
import { pointDetail } from '../pointDetail';
import type { ApiDeps } from '../deps';
import { route } from '../middleware';
import { pointIdParam } from '../validate';
import { visibleOr404 } from './vms';

export function pointsRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get(
    '/points/:pointId',
    route(async (req, res) => {
      const id = pointIdParam(req.params['pointId']);
      const summary = deps.catalog.getPoint(id);
      if (!summary) throw new AppError('NOT_FOUND', `restore point ${id} not found`);
      await visibleOr404(deps, res, summary.vmId).catch((err: unknown) => {
        throw err instanceof AppError && err.code === 'NOT_FOUND' ? new AppError('NOT_FOUND', `restore point ${id} not found`) : err;
      });
      const manifest = await deps.repository.readManifest(id);
      const damaged = (await deps.damage?.isDamaged(id)) ?? false;
      // the manifest has the lock as it is now (an operator may have changed it from the shell)
      const current = manifest.lockedUntil === summary.lockedUntil ? summary : { ...summary, lockedUntil: manifest.lockedUntil };
      res.json(pointDetail(current, manifest, (msg) => deps.log.warn({ pointId: id }, msg), damaged));
    }),
  );
  return r;
}
