/**
 * Backup policies as their owner, the scheduler, defines them: the definition a client sends,
 * the stored policy, its runs and what retention would do. Browser-safe types: the UI plugin
 * reads them through api/contract.ts with `import type`.
 */
import type { BackupMethod, ConsistencyMode } from '../backup/model';
import type { JobUser } from '../jobs/model';
import type { GfsRule } from '../repository/model';

/** Which VMs a policy backs up, resolved through the engine (service account) at each run. */
export type PolicySelection = { vmIds: string[] } | { tag: string } | { search: string };

/** GFS retention: the newest `keepLast` points, plus one per day / ISO week / month / year, in
 *  the policy's time zone, applied to each VM a run backed up. All zero: keep everything. */
export interface RetentionRules {
  keepLast: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

/** Children not started by the window's end are skipped (the next run takes them). Without
 *  `startMinutes` the window opens at each fire time; with it, daily at that many minutes after
 *  midnight in the policy's time zone. */
export interface PolicyWindow {
  startMinutes?: number;
  durationMinutes: number;
}

/** What a client sends to create or replace a policy. */
export interface PolicyInput {
  name: string;
  /** 5-field cron expression, read in `timeZone`. */
  schedule: string;
  /** IANA time zone name. */
  timeZone: string;
  selection: PolicySelection;
  retention: RetentionRules;
  /** Retention lock of each new point, in days (0: none). */
  lockDays: number;
  /** Most backups of this policy queued or running at once. */
  concurrency: number;
  window: PolicyWindow | null;
  enabled: boolean;
  /** auto (default): freeze the guest's filesystems through its agent when one answers, else
   *  crash-consistent with the reason; filesystem: a backup whose freeze fails fails; crash:
   *  never freeze (crash-consistent points). */
  consistency?: ConsistencyMode;
  /** How its backups read the VMs (backup/model.ts BackupMethod); absent: the service's
   *  `backup.method` (default auto). */
  method?: BackupMethod;
  /** 5-field cron (in `timeZone`) of the policy's verify: each selected VM's points re-hashed
   *  (damage marked, healed by the next backup). Absent: verified on demand only. */
  verifySchedule?: string;
  /** newest-weekly: the newest point of each selected VM is boot-checked when none of the VM's
   *  points was boot-checked in the last 7 days (schedule/bootCheckScheduler.ts). Absent or off:
   *  boot checks on demand only. */
  bootCheck?: PolicyBootCheck;
  /** The off-site copy (the 3-2-1 rule): a repository directory (format 2) into which a `sync`
   *  job copies each VM's new point — and any point of the VM it still lacks — after the VM's
   *  backup under this policy succeeded (repository/sync.ts). Absent: no copy. */
  syncTo?: string;
}

/** What a policy asks of boot checks (POLICY_BOOT_CHECKS lists them). */
export type PolicyBootCheck = 'off' | 'newest-weekly';
export const POLICY_BOOT_CHECKS: readonly PolicyBootCheck[] = ['off', 'newest-weekly'];

export interface Policy extends PolicyInput {
  id: string;
  createdAt: string;
  updatedAt: string;
  updatedBy: JobUser;
}

/** schedule: fired on time; catch-up: a fire time missed while the service was down, run once
 *  at start-up; manual: "run now". */
export type PolicyRunTrigger = 'schedule' | 'catch-up' | 'manual';
export type PolicyRunState = 'resolving' | 'running' | 'succeeded' | 'partial' | 'failed' | 'skipped';
export type PolicyRunVmState = 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface PolicyRunVm {
  vmId: string;
  vmName: string;
  state: PolicyRunVmState;
  /** The latest backup job of this VM in this run. */
  jobId: string | null;
  /** Jobs submitted for it (a job interrupted by a restart is submitted again). */
  attempts: number;
  /** Why it was skipped or failed. */
  reason: string | null;
  /** A disk was copied whole for another reason than being the first backup. */
  fellBackToFull: boolean;
}

export interface PolicyRun {
  id: string;
  policyId: string;
  policyName: string;
  trigger: PolicyRunTrigger;
  /** The fire time this run is for (null for manual runs). */
  scheduledAt: string | null;
  /** Earlier fire times missed while the service was down (not run). */
  missedRuns: number;
  createdAt: string;
  finishedAt: string | null;
  windowEnd: string | null;
  state: PolicyRunState;
  requestedBy: JobUser;
  message: string | null;
  vms: PolicyRunVm[];
}

export interface PolicyDetail extends Policy {
  /** The next 5 fire times; `local` in the policy's time zone. */
  nextRuns: Array<{ at: string; local: string }>;
  /** The next scheduled verify (null: none, or the policy is disabled). */
  nextVerify: { at: string; local: string } | null;
  /** Newest first. */
  runs: PolicyRun[];
}

export interface PolicyWarning {
  code: 'overlap' | 'empty-selection' | 'disabled';
  message: string;
}

export interface PolicySaveResponse {
  policy: PolicyDetail;
  warnings: PolicyWarning[];
}

/** What `POST /policies/retention-preview` is asked: a policy's selection, rules and zone
 *  (the policy form's values, saved or not). */
export interface RetentionPreviewRequest {
  selection: PolicySelection;
  retention: RetentionRules;
  timeZone: string;
}

export type RetentionRule = GfsRule;

export interface RetentionPreviewPoint {
  pointId: string;
  createdAt: string;
  /** keep: a rule keeps it; remove: it would go; locked: no rule keeps it, but its retention
   *  lock does until `lockedUntil`. */
  action: 'keep' | 'remove' | 'locked';
  /** The rules that keep it (empty unless `keep`). */
  keptBy: RetentionRule[];
  lockedUntil: string | null;
}

export interface RetentionPreviewVm {
  vmId: string;
  vmName: string;
  /** Newest first. */
  points: RetentionPreviewPoint[];
}

/** What the rules would do if applied now (a run applies them after its new point). */
export interface RetentionPreview {
  /** Rules all zero: nothing is ever pruned. */
  keepsAll: boolean;
  timeZone: string;
  /** The instant locks were judged at. */
  at: string;
  vms: RetentionPreviewVm[];
  totals: { keep: number; remove: number; locked: number };
}
