import type { Response } from 'express';
import type { PointSummary } from '../catalog';
import type { Vm } from '../engine';
import { AppError } from '../errors';
import type { ApiDeps } from './deps';
import { principalOf } from './middleware';

/**
 * What exists for the caller: a VM the engine does not let them see does not exist (404), nor
 * do its points — the answer is the same as for an id nobody has, so it reveals nothing.
 */

/** The VM as the caller sees it; NOT_FOUND for a VM they may not see. */
export async function visibleOr404(deps: Pick<ApiDeps, 'auth'>, res: Response, vmId: string): Promise<Vm> {
  const vm = await deps.auth.visibleVm(principalOf(res), vmId);
  if (!vm) throw new AppError('NOT_FOUND', `vm ${vmId} not found`);
  return vm;
}

/** The point (from the catalog) if its VM is visible to the caller — or deleted from the engine
 *  and the caller a backup admin; NOT_FOUND naming the point otherwise, whether it is missing or
 *  hidden. */
export async function visiblePointOr404(deps: Pick<ApiDeps, 'auth' | 'catalog' | 'deleted'>, res: Response, pointId: string): Promise<PointSummary> {
  const point = deps.catalog.getPoint(pointId);
  if (point && ((await deps.auth.visibleVm(principalOf(res), point.vmId)) || (await deps.deleted.adminSeesDeleted(res, point.vmId)))) return point;
  throw new AppError('NOT_FOUND', `restore point ${pointId} not found`);
}

/** Ids of every VM the caller may see. */
export async function visibleIds(deps: Pick<ApiDeps, 'auth'>, res: Response): Promise<Set<string>> {
  return new Set((await deps.auth.visibleVms(principalOf(res))).map((v) => v.id));
}
