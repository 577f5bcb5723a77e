import type { PointRestorer } from '../restore';
import type { JobResult } from './model';
import type { RestoreSpec } from './spec';
import type { JobRunner } from './types';

/**
 * Runs a restore job: restore/ plans again with the engine as it is when the job starts and
 * executes; this maps its progress and outcome onto the job.
 */
export function restoreRunner(restorer: Pick<PointRestorer, 'run'>): JobRunner<RestoreSpec> {
  return async (ctx) => {
    ctx.progress({ phase: 'planning', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 });
    const { result: r } = await restorer.run(ctx.spec.pointId, ctx.spec.request, {
      holder: `job ${ctx.job.id} (${ctx.job.requestedBy.name})`,
      signal: ctx.signal,
      onProgress: (p) => ctx.progress(p),
      log: (level, msg) => ctx.log(level, msg),
    });
    const result: JobResult = {
      pointId: ctx.spec.pointId,
      bytesRead: r.uploads.reduce((n, u) => n + u.dataBytes, 0),
      bytesStored: 0,
      durationMs: r.durationMs,
      disks: [],
      warnings: r.warnings,
      restored: { vmId: r.vmId, vmName: r.vmName, disks: r.disks.map((d) => ({ device: d.device, diskId: d.diskId, name: d.name, verified: d.verified })) },
    };
    ctx.log('info', r.vmId ? `restored as vm ${r.vmName ?? r.vmId} (${r.vmId})` : `restored ${r.disks.length} disk(s): ${r.disks.map((d) => d.name).join(', ')}`);
    return result;
  };
}
