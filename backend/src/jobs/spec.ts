/**
 * What a job is asked to do, stored with it when it is queued, so a job queued before a restart
 * runs as asked after it (one typed, versioned spec per kind); and the facts its runner
 * remembers while it runs, which must outlive the process (a VM the backup started). The one
 * reader of both is here: rows written by older versions are converted by catalog migration 6.
 */
import { AppError } from '../errors';
import type { BackupMethod, ConsistencyMode } from '../backup/model';
import type { RestoreRequestBody } from '../restore/model';
import type { JobKind } from './model';

/** A scheduled job's policy and run, for lists and logs (the scheduler finds its jobs by id). */
export interface JobOrigin {
  policyId: string;
  policyName: string;
  /** The policy run (backups); null for a scheduled verify. */
  runId: string | null;
  /** The run's trigger: schedule, catch-up or manual. */
  trigger: string;
  /** The fire time it is for (null for a manual run). */
  scheduledAt: string | null;
}

export interface BackupSpec {
  v: 1;
  kind: 'backup';
  /** Every disk copied whole even when its chain is healthy. */
  forceFull: boolean;
  /** auto: freeze the guest's filesystems when its agent answers, else crash-consistent;
   *  filesystem: fail when they cannot be frozen; crash: never freeze. */
  consistency: ConsistencyMode;
  /** How the backup reads the VM (a policy's or Backup now's choice); absent — every row from
   *  before the engine method, and a request that names none — the service's `backup.method`
   *  (default auto) when the job runs. */
  method?: BackupMethod;
  /** The retention lock the point is committed with, in days (a policy's; the service's minimum
   *  applies on top when the job runs). */
  lockDays: number;
  origin: JobOrigin | null;
}

export interface RestoreSpec {
  v: 1;
  kind: 'restore';
  pointId: string;
  request: RestoreRequestBody;
  /** What the plan named as the target when the job was queued (shown in lists). */
  target: string | null;
}

/** One point, every point of one VM (a policy's scheduled verify), or the whole repository. */
export type VerifyTarget = { pointId: string } | { vmKey: string } | { repository: true };

export interface VerifySpec {
  v: 1;
  kind: 'verify';
  target: VerifyTarget;
  origin: JobOrigin | null;
}

/** A boot check of one point (disk: the boot disk's device; null: the point's first disk). */
export interface BootCheckSpec {
  v: 1;
  kind: 'bootcheck';
  pointId: string;
  disk: string | null;
  /** A policy's weekly boot check of a VM's newest point; null when asked by a user. */
  origin: JobOrigin | null;
}

/** A policy's off-site copy after a backup: the VM's points the destination lacks, the new one
 *  (`pointId`) included. */
export interface SyncSpec {
  v: 1;
  kind: 'sync';
  /** The backup's new point (its VM's points are copied). */
  pointId: string;
  /** The destination repository: the policy's `syncTo` when the job was queued. */
  to: string;
  origin: JobOrigin | null;
}

export type JobSpec = BackupSpec | RestoreSpec | VerifySpec | BootCheckSpec | SyncSpec;
export type SpecOf<K extends JobKind> = Extract<JobSpec, { kind: K }>;

/** Facts a runner remembers while the job runs (merged, never replaced). */
export interface JobFacts {
  /** A VM that was down was started (paused) for the backup. */
  vmStartedByJob?: boolean;
  /** ...and was stopped again (nothing is left to settle after a crash). */
  vmStoppedAgain?: boolean;
  /** Verify jobs: the VM key of each point checked (callers see only their VMs' points). */
  verifiedVmKeys?: Record<string, string>;
  /** Engine method: the engine backup the job asked for, recorded before the request (the id is
   *  the product's), so that a restart after a crash finalizes it (interrupted.ts). */
  engineBackup?: { vmId: string; backupId: string };
  /** ...and it was finalized, or is known gone: nothing is left to settle. */
  engineBackupFinished?: boolean;
}

/** A stored spec: written by `JSON.stringify(spec)` of this version, or converted to it by
 *  migration 6. CATALOG_ERROR for anything else (a newer program's spec, a hand-edited row). */
export function parseSpec(jobId: string, kind: JobKind, json: string | null): JobSpec {
  const v = json === null ? undefined : (JSON.parse(json) as Partial<JobSpec> | null);
  if (!v || v.v !== 1 || v.kind !== kind) throw new AppError('CATALOG_ERROR', `job ${jobId}: its stored spec is not a version-1 ${kind} spec (${json ?? 'none'})`);
  return v as JobSpec;
}

/** The method a backup job asked for: its spec's, else the service's default (absent in rows
 *  from before the engine method and in requests that name none). */
export function specMethod(spec: BackupSpec, serviceDefault: BackupMethod): BackupMethod {
  return spec.method ?? serviceDefault;
}

/** Only the known facts, with their types checked: the column also holds keys older versions
 *  stored there (their specs, since moved to the spec column). */
export function parseFacts(json: string): JobFacts {
  const o = JSON.parse(json) as Record<string, unknown>;
  const facts: JobFacts = {};
  if (typeof o['vmStartedByJob'] === 'boolean') facts.vmStartedByJob = o['vmStartedByJob'];
  if (typeof o['vmStoppedAgain'] === 'boolean') facts.vmStoppedAgain = o['vmStoppedAgain'];
  const keys = o['verifiedVmKeys'];
  if (typeof keys === 'object' && keys !== null && !Array.isArray(keys)) {
    facts.verifiedVmKeys = Object.fromEntries(Object.entries(keys).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  const eb = o['engineBackup'];
  if (typeof eb === 'object' && eb !== null && !Array.isArray(eb)) {
    const { vmId, backupId } = eb as Record<string, unknown>;
    if (typeof vmId === 'string' && typeof backupId === 'string' && vmId !== '' && backupId !== '') facts.engineBackup = { vmId, backupId };
  }
  if (typeof o['engineBackupFinished'] === 'boolean') facts.engineBackupFinished = o['engineBackupFinished'];
  return facts;
}
