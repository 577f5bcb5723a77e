/**
 * What a job is, as the queue keeps it and the API shows it: kinds, states, phases, progress,
 * results. Pure types (and two constants): the UI plugin reads them through api/contract.ts
 * with `import type`, so nothing here may reach for Node.
 */
import type { FullReason, PointMethod } from '../repository/model';
import type { RestoreMode } from '../restore/model';
import type { Progress } from '../util/progress';

/** backup: a VM into the repository; restore: a point back into the engine; verify: re-hash the
 *  chunks of one point (vmId/vmName: the point's VM), of one VM's points, or of the whole
 *  repository (vmId: REPOSITORY_JOB_VM_ID, vmName "repository"). */
/** bootcheck: one point started in an isolated QEMU on this machine (restore/bootCheck.ts);
 *  vmId/vmName: the point's VM. */
/** sync: a policy's off-site copy (`syncTo`) of a VM's points that the destination repository
 *  lacks, after its backup (repository/sync.ts); vmId/vmName: the VM. */
export type JobKind = 'backup' | 'restore' | 'verify' | 'bootcheck' | 'sync';

/** The vmId of a job that concerns the whole repository (a repository verify): the nil UUID. */
export const REPOSITORY_JOB_VM_ID = '00000000-0000-0000-0000-000000000000';

/** queued → running → succeeded | failed | cancelled | interrupted (the service died under it). */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** Phases of a backup (backup/) and of a restore (restore/), plus the queue's and verify's,
 *  boot check's and sync's own. */
export const JOB_PHASES = [
  'queued',
  'starting-vm',
  'preparing',
  'frozen',
  'copying',
  'committing',
  'stopping-vm',
  'planning',
  'creating-disks',
  'uploading',
  'finalizing',
  'creating-vm',
  'attaching',
  'verifying',
  'booting',
  'syncing',
  'done',
] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

/** Progress as a runner reports it; the queue adds rate, ETA and the time (JobProgress). */
export type RunnerProgress = Progress<JobPhase>;

export interface JobProgress extends RunnerProgress {
  /** Bytes per second over the last few seconds; 0 when unknown. */
  rateBytesPerSec: number;
  /** null while the rate or the total is unknown. */
  etaSeconds: number | null;
  updatedAt: string;
}

export interface JobError {
  code: string;
  message: string;
}

/** Who asked for a job: an engine user, a policy, or one of the service's schedulers. */
export interface JobUser {
  id: string;
  name: string;
}

export interface VerifiedPoints {
  /** Points checked. */
  points: number;
  /** Points found damaged (marked: the next backup of their VM copies the damaged disks whole). */
  damaged: string[];
  /** Corrupt chunk files moved to quarantine by this verify (repository-wide count). */
  quarantined: number;
  /** Points marked damaged before that verified whole again (mark cleared). */
  cleared: string[];
}

export interface RestoredObjects {
  vmId: string | null;
  vmName: string | null;
  disks: Array<{ device: string; diskId: string; name: string; verified: boolean }>;
}

export interface JobResult {
  pointId: string;
  bytesRead: number;
  bytesStored: number;
  durationMs: number;
  disks: Array<{ disk: string; mode: 'full' | 'incremental'; reason: FullReason | 'incremental' }>;
  warnings: string[];
  /** Backup jobs: the method that made the point (`auto` resolved); absent on results of
   *  versions before the engine method (they were all `qmp`). */
  method?: PointMethod;
  /** Restore jobs: what was created in the engine (bytesRead = bytes uploaded). */
  restored?: RestoredObjects;
  /** Verify jobs (pointId: the point verified, "" otherwise; bytesRead 0). Of a repository verify
   *  each caller sees only the points of VMs they may see. */
  verified?: VerifiedPoints;
  /** Boot check jobs (pointId: the point booted; bytesRead 0): the verdict, also stored on the
   *  point (GET /points/{id}/bootcheck). A job that ran to a verdict succeeded, whatever it is. */
  bootCheck?: BootCheckOutcome;
  /** Sync jobs (pointId: the backup's new point; bytesRead: plain bytes read from this
   *  repository, bytesStored: bytes the copies added to the destination). */
  synced?: SyncedPoints;
}

export interface SyncedPoints {
  /** The destination repository (the policy's syncTo). */
  to: string;
  /** Points copied (read back and compared), oldest first. */
  copied: string[];
  /** Points the destination had already. */
  skipped: number;
}

export interface BootCheckOutcome {
  state: 'ok' | 'failed' | 'timeout';
  reason: string;
  durationMs: number;
  accel: 'kvm' | 'tcg';
}

export interface Job {
  id: string;
  kind: JobKind;
  state: JobState;
  vmId: string;
  vmName: string;
  /** Engine host the VM ran on when the job was admitted; null when it was down. */
  hostId: string | null;
  requestedBy: JobUser;
  /** Every disk copied whole (backup jobs). */
  forceFull: boolean;
  /** Restore jobs: the point and what is restored. vmId/vmName are the source VM's. */
  restore: { pointId: string; mode: RestoreMode; target: string | null } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequested: boolean;
  progress: JobProgress | null;
  result: JobResult | null;
  error: JobError | null;
}

export interface JobLogEntry {
  at: string;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface JobList {
  jobs: Job[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  nextBefore: string | null;
}
