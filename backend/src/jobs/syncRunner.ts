/**
 * Runs a sync job: a policy's off-site copy (`syncTo`) after a backup. Every point of the backed-up
 * VM that the destination repository lacks — the new one, and any an earlier sync missed — is
 * copied by the repository's sync (repository/sync.ts: same ids, metadata and running locks,
 * deduplicated at the destination, each copy read back and compared). A point that could not be
 * copied fails the job, naming it and why; the next sync of the VM copies it then.
 */
import { AppError } from '../errors';
import { syncRepositories, type Repository, type SyncReport } from '../repository';
import type { JobResult } from './model';
import type { SyncSpec } from './spec';
import type { JobRunner } from './types';

export interface SyncRunnerDeps {
  /** The service's repository, the source. */
  repository: Repository;
  /** Opens the destination (the policy's syncTo); closed by the runner. */
  openDestination(location: string): Promise<Repository>;
}

export function syncRunner(deps: SyncRunnerDeps): JobRunner<SyncSpec> {
  return async (ctx) => {
    const { pointId, to } = ctx.spec;
    const started = Date.now();
    const m = await deps.repository.readManifest(pointId);
    ctx.progress({ phase: 'syncing', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 });
    ctx.log('info', `copying the points of vm ${ctx.job.vmName} that ${to} lacks (after point ${pointId})`);
    const dest = await deps.openDestination(to);
    let report: SyncReport;
    try {
      report = await syncRepositories(deps.repository, dest, {
        vmKeys: [m.vm.key],
        holder: `service:${ctx.job.requestedBy.name}`,
        signal: ctx.signal,
        onProgress: (p) => ctx.progress({ phase: 'syncing', disk: null, bytesDone: p.done, bytesTotal: p.total, disksDone: 0, disksTotal: 0 }),
      });
    } finally {
      await dest.close();
    }
    for (const p of report.points) {
      if (p.status === 'copied') ctx.log('info', `point ${p.pointId} copied to ${to}${p.incremental ? ` (changes since ${p.parentPointId ?? '?'})` : ''}, read back and compared`);
      if (p.status === 'failed') ctx.log('error', `point ${p.pointId} not copied: ${p.reason ?? p.code ?? 'failed'}`);
    }
    const failed = report.points.filter((p) => p.status === 'failed');
    if (failed.length > 0) {
      throw new AppError('REPO_IO_ERROR', `${failed.length} point(s) of vm ${ctx.job.vmName} could not be copied to ${to}: ${failed.map((p) => `${p.pointId} (${p.reason ?? p.code ?? 'failed'})`).join('; ')}`);
    }
    const result: JobResult = {
      pointId,
      bytesRead: report.bytesRead,
      bytesStored: report.bytesStored,
      durationMs: Date.now() - started,
      disks: [],
      warnings: [],
      synced: { to, copied: report.points.filter((p) => p.status === 'copied').map((p) => p.pointId), skipped: report.skipped },
    };
    return result;
  };
}
