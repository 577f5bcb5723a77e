import type { JobResult } from './model';
import type { Repository, VerifyReport } from '../repository';
import type { VerifySpec } from './spec';
import type { JobRunner } from './types';

export interface VerifyRunnerDeps {
  repository: Pick<Repository, 'verify' | 'chunkSize'>;
  /** A verify ended, however (damage marks may have changed): caches of them are stale. */
  onVerified?: () => void;
}

/** Most per-point warnings a job lists. */
const MAX_WARNINGS = 50;

/**
 * Runs a verify job: re-hashes every chunk of one point, of every point of one VM (a policy's
 * scheduled verify) or of the whole repository (the spec's target), with repair: corrupt chunk files go to quarantine, damaged points are
 * marked (the next backup of their VM copies the damaged disks whole), points whole again lose
 * their mark; each change is in the repository's audit log, naming the user who asked. Nothing
 * else changes: no manifest, lock or point is touched.
 *
 * The per-point verdicts are remembered with the job (facts.verifiedVmKeys)
 * so that the API can show each caller only the points of VMs they may see.
 */
export function verifyRunner(deps: VerifyRunnerDeps): JobRunner<VerifySpec> {
  return async (ctx) => {
    const target = ctx.spec.target;
    const pointId = 'pointId' in target ? target.pointId : undefined;
    // a policy's scheduled verify: every point of one VM
    const vmKey = 'vmKey' in target ? target.vmKey : undefined;
    const started = Date.now();
    const chunk = deps.repository.chunkSize;
    ctx.progress({ phase: 'verifying', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 });
    ctx.log('info', pointId ? `verifying every chunk of restore point ${pointId}` : vmKey ? `verifying every chunk of every restore point of ${ctx.job.vmName}` : 'verifying every chunk of every restore point in the repository');
    let report: VerifyReport;
    try {
      report = await deps.repository.verify({
        ...(pointId ? { pointId } : vmKey ? { vmKey } : {}),
        repair: true,
        actor: `service:${ctx.job.requestedBy.name}`,
        signal: ctx.signal,
        // counts of distinct chunks, shown in bytes of full chunks (an upper bound)
        onProgress: (done, total) => ctx.progress({ phase: 'verifying', disk: null, bytesDone: done * chunk, bytesTotal: total * chunk, disksDone: 0, disksTotal: 0 }),
      });
    } finally {
      // even an aborted verify may have moved chunks or written marks
      deps.onVerified?.();
    }
    const damaged = report.points.filter((p) => p.status === 'damaged');
    const vmKeys: Record<string, string> = {};
    for (const p of report.points) if (p.vmKey) vmKeys[p.pointId] = p.vmKey;
    ctx.remember({ verifiedVmKeys: vmKeys });
    if (pointId || vmKey) {
      for (const p of damaged) ctx.log('error', `point ${p.pointId}: ${p.problems} problem(s)${p.damagedDevices ? ` on disk(s) ${p.damagedDevices.join(', ')}` : ' (its manifest cannot be read)'}`);
      for (const id of report.cleared) ctx.log('info', `point ${id} verified whole again: its damage mark is cleared`);
      ctx.log('info', `${report.chunksChecked} chunk(s) checked: ${damaged.length > 0 ? 'damaged' : 'whole'}, ${report.quarantined.length} chunk file(s) quarantined`);
    } else {
      // a repository verify's log is read by every user: it names no point (the result, filtered
      // per caller, does)
      ctx.log('info', `${report.chunksChecked} chunk(s) checked, ${report.quarantined.length} chunk file(s) quarantined; the result lists the damaged points of your VMs`);
    }
    const result: JobResult = {
      pointId: pointId ?? '',
      // verify reads the repository, not a VM: it does not count in the backup byte totals
      bytesRead: 0,
      bytesStored: 0,
      durationMs: Date.now() - started,
      disks: [],
      // (the queue copies warnings into the job's log: none for a repository verify, see above)
      warnings: pointId || vmKey ? damaged.slice(0, MAX_WARNINGS).map((p) => `point ${p.pointId} is damaged (${p.problems} problem(s))`) : [],
      verified: {
        points: report.points.length,
        damaged: damaged.map((p) => p.pointId),
        quarantined: report.quarantined.length,
        cleared: report.cleared,
      },
    };
    return result;
  };
}
