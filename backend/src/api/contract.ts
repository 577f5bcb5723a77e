/**
 * The backup service's HTTP + WebSocket contract: every body the service sends or accepts under
 * `/api/v1`. The UI plugin imports these with `import type` only (so it bundles nothing of the
 * backend); the two constants below are for the backend, the UI keeps its own copies.
 * Field names are camelCase; times are ISO 8601 UTC strings; sizes are bytes.
 */

/** backup: a VM into the repository; restore: a point back into the engine; verify: re-hash the
 *  chunks of one point (vmId/vmName: the point's VM) or of the whole repository (vmId:
 *  REPOSITORY_JOB_VM_ID, vmName "repository"). */
export type JobKind = 'backup' | 'restore' | 'verify';

/** The vmId of a job that concerns the whole repository (a repository verify): the nil UUID. */
export const REPOSITORY_JOB_VM_ID = '00000000-0000-0000-0000-000000000000';

/** queued → running → succeeded | failed | cancelled | interrupted (the service died under it). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** Why a disk is (or will be) copied whole instead of incrementally. */
export type FullReason =
  | 'first-backup'
  | 'bitmap-missing'
  | 'bitmap-inconsistent'
  | 'bitmap-not-recording'
  | 'bitmap-busy'
  | 'bitmap-mismatch'
  | 'disk-resized'
  | 'node-changed'
  | 'parent-missing'
  | 'parent-damaged'
  | 'forced';

export type JobPhase =
  | 'queued'
  | 'starting-vm'
  | 'preparing'
  | 'frozen'
  | 'copying'
  | 'committing'
  | 'stopping-vm'
  // restore
  | 'planning'
  | 'creating-disks'
  | 'uploading'
  | 'finalizing'
  | 'creating-vm'
  | 'attaching'
  | 'verifying'
  | 'done';

export interface JobProgress {
  phase: JobPhase;
  /** Disk being copied (engine alias when known). */
  disk: string | null;
  bytesDone: number;
  /** Grows while disks' extents become known. */
  bytesTotal: number;
  disksDone: number;
  disksTotal: number;
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

export interface JobUser {
  id: string;
  name: string;
}

export interface JobResult {
  pointId: string;
  bytesRead: number;
  bytesStored: number;
  durationMs: number;
  disks: Array<{ disk: string; mode: 'full' | 'incremental'; reason: FullReason | 'incremental' }>;
  warnings: string[];
  /** Restore jobs: what was created in the engine (bytesRead = bytes uploaded). */
  restored?: RestoredObjects;
  /** Verify jobs (pointId: the point verified, "" for the repository; bytesRead = bytes
   *  re-hashed). Of a repository verify each caller sees only the points of VMs they may see. */
  verified?: VerifiedPoints;
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

export interface JobDetail extends Job {
  log: JobLogEntry[];
}

export interface JobList {
  jobs: Job[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  nextBefore: string | null;
}

export interface StartBackupRequest {
  /** Copy every disk whole even when its chain is healthy. */
  full?: boolean;
}

export interface StartBackupResponse {
  job: Job;
  /** A backup of this VM was already queued or running: this is that job. */
  joined: boolean;
}

export interface PointDisk {
  /** QEMU device id, the disk's name inside the point. */
  device: string;
  diskId: string | null;
  alias: string | null;
  format: string;
  virtualSize: number;
  mode: 'full' | 'incremental';
  reason: FullReason | 'incremental';
  /** The disk's dirty bitmap survives a restart of the VM (qcow2 v3); in memory only otherwise. */
  bitmapPersistent: boolean;
  bytesRead: number;
  bytesStored: number;
  chunksNew: number;
  chunksReused: number;
  chunksZero: number;
}

export interface PointSummary {
  id: string;
  vmId: string;
  vmName: string;
  createdAt: string;
  completedAt: string;
  parentPointId: string | null;
  consistency: 'crash' | 'filesystem';
  /** Sum over disks. */
  virtualSize: number;
  bytesRead: number;
  bytesStored: number;
  /** Seconds from the transaction to the manifest. */
  durationSeconds: number;
  lockedUntil: string | null;
  disks: PointDisk[];
}

export interface OvfSummary {
  name: string | null;
  description: string | null;
  memoryMiB: number | null;
  cpus: number | null;
  osType: string | null;
  nics: Array<{ name: string; mac: string | null; network: string | null }>;
  disks: Array<{ diskId: string; alias: string | null; sizeBytes: number | null }>;
}

export interface PointDetail extends PointSummary {
  ovfAvailable: boolean;
  ovf: OvfSummary | null;
  /** Engine disks that were left out of the point (`backup=0` ...). */
  excludedDisks: Array<{ diskId: string; alias: string; reason: string }>;
  startedPaused: boolean;
  jobId: string | null;
  /** A verify found a missing or corrupt chunk (or index) of this point; restoring it fails on
   *  the damaged disks. The next backup of the VM stores fresh data for them. */
  damaged: boolean;
}

export interface PointList {
  points: PointSummary[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  nextBefore: string | null;
}

export type ChainState = 'ok' | 'will-be-full';

export interface DiskChainHealth {
  diskId: string;
  alias: string;
  state: ChainState;
  /** Why the next backup of this disk will be full; null when `ok`. */
  reason: FullReason | 'excluded' | null;
  /** Excluded disks (`backup=0` in their description) are never backed up. */
  excluded: boolean;
}

export interface VmSummary {
  id: string;
  name: string;
  description: string;
  status: string;
  clusterId: string | null;
  lastPoint: PointSummary | null;
  lastJob: Job | null;
  pointCount: number;
  chain: DiskChainHealth[];
  /** Names of the enabled policies that select this VM now; empty: it is in no policy. */
  policies: string[];
  /** Restore points of this VM a verify marked damaged (always sent by this service; optional
   *  only so that older answers still type-check). */
  damagedPoints?: number;
}

export interface VmList {
  vms: VmSummary[];
}

export interface RepositoryStatus {
  chunkSize: number;
  pointCount: number;
  vmCount: number;
  chunkCount: number;
  /** Compressed bytes in the chunk store. */
  usedBytes: number;
  /** Sum of every point's disk sizes: what a copy of each point in full would take. */
  logicalBytes: number;
  /** Non-zero data referenced by all points, before dedup and compression. */
  referencedBytes: number;
  /** referenced / unique; ≥ 1. */
  dedupRatio: number;
  /** unique plain / stored compressed; ≥ 1 when data compresses. */
  compressionRatio: number;
  /** Free space on the repository's file system. */
  freeBytes: number | null;
}

export interface Health {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  checks: Array<{ name: 'catalog' | 'repository' | 'engine'; ok: boolean; message: string }>;
}

export interface WhoAmI {
  userId: string;
  userName: string;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** Messages the browser sends on `/api/v1/events`. The first one must be `auth`. */
export type ClientMessage = { type: 'auth'; token: string } | { type: 'ping' };

/** Messages the service sends on `/api/v1/events`. */
export type ServerMessage =
  | { type: 'ready'; user: WhoAmI; heartbeatSeconds: number }
  /** Sent once after `ready`, and again after a reconnect: the jobs queued, running, or
   *  finished recently on VMs the caller may see. */
  | { type: 'snapshot'; jobs: Job[] }
  | { type: 'job'; job: Job }
  | { type: 'progress'; jobId: string; vmId: string; progress: JobProgress }
  | { type: 'point'; point: PointSummary }
  | { type: 'pong' }
  | { type: 'error'; code: string; message: string };

/** WebSocket close codes the service uses (4000–4999 are for applications). */
export const WS_CLOSE = {
  unauthorized: 4401,
  authTimeout: 4408,
  badMessage: 4400,
  shuttingDown: 1001,
} as const;

export type RestoreMode = 'vm' | 'disks';

/** Body of `POST /points/:pointId/restore/plan` and `POST /points/:pointId/restore`. */
export interface RestoreRequestBody {
  mode: RestoreMode;
  /** vm mode: target cluster id (default: the original's). */
  clusterId?: string;
  /** vm mode: name of the new VM (default: `<original>-restored`). */
  vmName?: string;
  /** vm mode: create the VM from the stored OVF (default true). */
  fromOvf?: boolean;
  /** vm mode: new VM id (default true); false brings back an absent VM with its own ids. */
  regenerateIds?: boolean;
  /** vm mode: new MAC addresses (default true). */
  regenerateMacs?: boolean;
  /** disks mode: attach the new disks to this VM (default: leave them floating). */
  attachToVmId?: string;
  /** Upload through the engine's imageio proxy instead of the host's daemon. */
  useProxy?: boolean;
  disks?: Array<{ device: string; include: boolean; name?: string; storageDomainId?: string }>;
}

export interface RestoreProblem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  subject?: string;
}

/** What a restore will do, for the dialog to show before anything is written. */
export interface RestorePlanView {
  pointId: string;
  sourceVm: { id: string; name: string };
  mode: RestoreMode;
  vm: { name: string; clusterId: string; clusterName: string; regenerateIds: boolean; regenerateMacs: boolean; description: string; nics: Array<{ name: string; mac: string | null; network: string | null; vnicProfileId: string | null }> } | null;
  attachToVmId: string | null;
  useProxy: boolean;
  disks: Array<{
    device: string;
    diskId: string;
    name: string;
    storageDomainId: string;
    storageDomainName: string;
    format: 'cow' | 'raw';
    sparse: boolean;
    provisionedSize: number;
    dataBytes: number;
    interface: string;
    bootable: boolean;
  }>;
  problems: RestoreProblem[];
  ok: boolean;
  /** The choices the dialog offers. */
  targets: {
    clusters: Array<{ id: string; name: string }>;
    storageDomains: Array<{ id: string; name: string; availableBytes: number | null; usable: boolean }>;
    vms: Array<{ id: string; name: string }>;
  };
}

export interface StartRestoreResponse {
  job: Job;
  plan: RestorePlanView;
}

/** A short-lived link for a browser download (no header can be set on a plain link). */
export interface DownloadTicket {
  url: string;
  expiresAt: string;
  sizeBytes: number;
  format: 'raw' | 'qcow2';
  fileName: string;
}

// ---- backup policies (schedule/) ----

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
  /** auto (default): freeze the guest's filesystems through its agent when one answers;
   *  crash: never freeze (crash-consistent points). */
  consistency?: 'auto' | 'crash';
  /** 5-field cron (in `timeZone`) of the policy's verify: each selected VM's points re-hashed
   *  (damage marked, healed by the next backup). Absent: verified on demand only. */
  verifySchedule?: string;
}

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

export interface PolicyList {
  policies: Array<Policy & { nextRun: string | null }>;
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

export interface PolicyRunList {
  runs: PolicyRun[];
}

export interface PolicyRunResponse {
  run: PolicyRun;
}

/** What `POST /policies/retention-preview` is asked: a policy's selection, rules and zone
 *  (the policy form's values, saved or not). */
export interface RetentionPreviewRequest {
  selection: PolicySelection;
  retention: RetentionRules;
  timeZone: string;
}

export type RetentionRule = 'last' | 'daily' | 'weekly' | 'monthly' | 'yearly';

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

// ---- verify jobs and the audit log ----

/** Answer of `POST /points/:pointId/verify` and `POST /repository/verify`. */
export interface StartVerifyResponse {
  job: Job;
}

/** What an audit entry is about: repository actions (FORMAT.md §12) and the service's own
 *  records (refused logins, restores, policy changes and runs by hand). */
export type AuditKind =
  | 'delete'
  | 'delete-failed'
  | 'prune'
  | 'lock-extend'
  | 'unlock'
  | 'gc'
  | 'damage-mark'
  | 'damage-clear'
  | 'chunk-quarantine'
  | 'auth-failure'
  | 'restore'
  | 'policy-create'
  | 'policy-update'
  | 'policy-delete'
  | 'policy-run';

export interface AuditEntry {
  time: string;
  kind: AuditKind;
  /** repository: the repository's append-only audit.log; service: the service's own audit.log
   *  (refused tokens, restores, policy changes and "run now"). */
  source: 'repository' | 'service';
  /** A user name, `cli:<user>@<host>`, `policy <name>`; for auth failures `token:<sha256 prefix>`
   *  (never the token). */
  actor: string;
  pointId: string | null;
  vmKey: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}

/** Answer of `GET /audit` (engine SuperUsers only). */
export interface AuditList {
  /** Newest first (by time; records written together keep their order, reversed). */
  entries: AuditEntry[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}
