import { DISK_INTERFACES } from '../../engine';
import { AppError, describeError, isAppError } from '../../errors';
import type { DiskIndex, Manifest } from '../../repository';
import type { RestorePlan } from '../plan/types';
import { RestoreRun } from './run';
import type { ExecuteDeps, RestoreResult } from './types';

/**
 * Carries out a restore plan against the engine (reference §7): creates the planned disks and
 * waits for them, uploads each from the point through an image transfer (zero ranges as zero
 * requests), finalizes, reads each back through a download transfer and compares SHA-256 with
 * the point's, then creates the VM from the OVF (or attaches the disks to the chosen VM).
 *
 * On any failure or abort everything created is removed and RESTORE_FAILED says what failed,
 * where, and whether the clean-up left anything behind. A plan with errors is refused first.
 */
export async function executeRestore(plan: RestorePlan, deps: ExecuteDeps): Promise<RestoreResult> {
  const started = Date.now();
  checkPlan(plan);
  const { manifest, indexes } = await readPoint(plan, deps);
  // one abort reason of our own for every call below, so messages read "... aborted - the
  // restore was aborted" whatever the caller aborted with
  const aborter = new AbortController();
  const onAbort = (): void => aborter.abort(new AppError('ABORTED', 'the restore was aborted'));
  if (deps.signal?.aborted) onAbort();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await new RestoreRun(plan, deps, manifest, indexes, aborter.signal).execute(started);
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
  }
}

function checkPlan(plan: RestorePlan): void {
  const errors = plan.problems.filter((p) => p.severity === 'error');
  if (!plan.ok || errors.length > 0) {
    const list = errors.map((p) => p.message).join('; ') || 'the plan is marked not ok';
    throw new AppError('RESTORE_FAILED', `restore of point ${plan.pointId} refused: ${list}`, { details: { pointId: plan.pointId, problems: errors } });
  }
  if (plan.disks.length === 0) throw new AppError('RESTORE_FAILED', `restore of point ${plan.pointId} refused: no disk to restore`);
  for (const d of plan.disks) {
    if (!(DISK_INTERFACES as readonly string[]).includes(d.interface)) {
      throw new AppError('RESTORE_FAILED', `restore of point ${plan.pointId} refused: disk ${d.name} has interface '${d.interface}', not one of ${DISK_INTERFACES.join(', ')}`);
    }
  }
}

async function readPoint(plan: RestorePlan, deps: ExecuteDeps): Promise<{ manifest: Manifest; indexes: Map<string, DiskIndex> }> {
  try {
    const manifest = deps.point.manifest;
    if (manifest.pointId !== plan.pointId) throw new AppError('RESTORE_FAILED', `the plan is for point ${plan.pointId}, the point opened is ${manifest.pointId}`);
    const indexes = new Map<string, DiskIndex>();
    for (const d of plan.disks) {
      const index = await deps.point.index(d.device);
      if (index.virtualSize > d.provisionedSize) {
        throw new AppError('RESTORE_FAILED', `disk ${d.name} is planned with ${d.provisionedSize} bytes but the point's ${d.device} has ${index.virtualSize}`);
      }
      indexes.set(d.device, index);
    }
    return { manifest, indexes };
  } catch (err) {
    if (isAppError(err, 'RESTORE_FAILED')) throw new AppError('RESTORE_FAILED', `restore of point ${plan.pointId} refused: ${err.message}`);
    throw new AppError('RESTORE_FAILED', `restore of point ${plan.pointId} cannot read the point: ${describeError(err)}`, { cause: err });
  }
}
