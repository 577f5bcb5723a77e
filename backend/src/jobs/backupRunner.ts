import type { JobResult } from './model';
import { engineVmBackup, type BackupMethod } from '../backup';
import type { EngineClient } from '../engine';
import type { HostDirectory, VmHostLink } from '../hosts';
import { diskLabel, type Manifest, type Repository } from '../repository';
import { specMethod, type BackupSpec } from './spec';
import type { JobRunner } from './types';

export interface BackupRunnerDeps {
  /** The service account: background work never runs on a portal user's token. */
  engine: EngineClient;
  repository: Repository;
  host: VmHostLink | HostDirectory;
  scratchDir: string;
  /** A new restore point exists (index it before the job is reported done). */
  onPoint: (manifest: Manifest) => void;
  /** Every point is committed locked at least this many days (protection.minLockDays). */
  minLockDays: number;
  /** The method of a job whose spec names none (config backup.method). */
  defaultMethod: BackupMethod;
}

/** Runs a backup job: the engine-aware backup of the job's VM, its progress and outcome. */
export function backupRunner(deps: BackupRunnerDeps): JobRunner<BackupSpec> {
  return async (ctx) => {
    const method = specMethod(ctx.spec, deps.defaultMethod);
    const r = await engineVmBackup({
      engine: deps.engine,
      vmId: ctx.job.vmId,
      repository: deps.repository,
      host: deps.host,
      scratchDir: deps.scratchDir,
      forceFull: ctx.spec.forceFull,
      method,
      // a policy may ask for crash-consistent points (no guest freeze), or refuse anything less
      // than filesystem-consistent ones
      consistency: ctx.spec.consistency,
      // locked from the instant the point exists: nothing can delete it before the lock is set
      lockDays: Math.max(ctx.spec.lockDays, deps.minLockDays),
      meta: { jobId: ctx.job.id, requestedBy: ctx.job.requestedBy.name },
      signal: ctx.signal,
      onProgress: (p) => ctx.progress(p),
      onVmStarting: () => {
        ctx.remember({ vmStartedByJob: true });
        ctx.log('info', `vm ${ctx.job.vmName} is down: starting it paused for the backup`);
      },
      // recorded before the engine is asked (a synchronous write): a restart after a crash
      // finds the engine backup by this id and finalizes it (interrupted.ts)
      onEngineBackup: (ref) => {
        if (ref.finished) {
          ctx.remember({ engineBackupFinished: true });
          return;
        }
        ctx.remember({ engineBackup: { vmId: ref.vmId, backupId: ref.backupId }, engineBackupFinished: false });
        ctx.log('info', `asking the engine for backup ${ref.backupId} of vm ${ctx.job.vmName}`);
      },
    });
    deps.onPoint(r.manifest);
    ctx.log('info', `backed up by the ${r.method === 'engine' ? "engine's backup API (imageio)" : 'QEMU monitor on the host (qmp)'}${method === 'auto' ? ' (method auto)' : ''}`);
    for (const e of r.excluded) ctx.log('info', `disk ${e.disk.disk.alias} left out: ${e.reason}`);
    if (r.startedPaused) ctx.remember({ vmStoppedAgain: true });
    const m = r.manifest;
    const result: JobResult = {
      pointId: m.pointId,
      bytesRead: m.disks.reduce((n, d) => n + d.bytesRead, 0),
      bytesStored: m.disks.reduce((n, d) => n + d.bytesStored, 0),
      durationMs: r.durationMs,
      disks: m.disks.map((d) => ({ disk: diskLabel(d), mode: d.mode, reason: d.reason })),
      warnings: r.warnings,
      method: r.method,
    };
    for (const d of result.disks) ctx.log('info', `disk ${d.disk}: ${d.mode}${d.mode === 'full' ? ` (${d.reason})` : ''}`);
    return result;
  };
}
