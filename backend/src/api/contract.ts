/**
 * The backup service's HTTP + WebSocket contract: every body the service sends or accepts under
 * `/api/v1`. The types are defined by the layer that owns them (jobs/, schedule/, catalog/,
 * restore/, backup/, repository/ — each in its browser-safe `model.ts`); this file re-exports
 * them and composes the API's own envelopes. The UI plugin imports it with `import type` only,
 * so it bundles nothing of the backend (the constants it needs, it keeps its own copies of).
 * Field names are camelCase; times are ISO 8601 UTC strings; sizes are bytes.
 */
import type { BackupMethod, ConsistencyMode, DiskChainHealth } from '../backup/model';
import type { PointMethod } from '../repository/model';
import type { OvfSummary, PointSummary } from '../catalog/model';
import type { Job, JobLogEntry, JobProgress } from '../jobs/model';
import type { Policy, PolicyRun } from '../schedule/model';
import type { RestorePlanView } from '../restore/model';

export type { FullReason, GfsRule } from '../repository/model';
export type { JobKind, JobState, JobPhase, JobProgress, JobError, JobUser, JobResult, VerifiedPoints, RestoredObjects, BootCheckOutcome, Job, JobLogEntry, JobList } from '../jobs/model';
export { REPOSITORY_JOB_VM_ID, TERMINAL_JOB_STATES } from '../jobs/model';
export type { PointBootCheck, PointDisk, PointSummary, OvfSummary, PointDetail, AuditKind, AuditEntry, AuditList } from '../catalog/model';
export type { ChainState, DiskChainHealth, BackupMethod, ConsistencyMode } from '../backup/model';
export type { PointMethod } from '../repository/model';
export type { RestoreMode, RestoreRequestBody, RestoreProblemView as RestoreProblem, RestorePlanView } from '../restore/model';
export type {
  PolicySelection,
  RetentionRules,
  PolicyWindow,
  PolicyInput,
  PolicyBootCheck,
  Policy,
  PolicyRunTrigger,
  PolicyRunState,
  PolicyRunVmState,
  PolicyRunVm,
  PolicyRun,
  PolicyDetail,
  PolicyWarning,
  PolicySaveResponse,
  RetentionPreviewRequest,
  RetentionRule,
  RetentionPreviewPoint,
  RetentionPreviewVm,
  RetentionPreview,
} from '../schedule/model';

export interface JobDetail extends Job {
  log: JobLogEntry[];
}

export interface StartBackupRequest {
  /** Copy every disk whole even when its chain is healthy. */
  full?: boolean;
  /** How the backup reads the VM; absent: the service's `backup.method` (default auto). */
  method?: BackupMethod;
  /** auto (absent): freeze the guest when its agent answers, else crash-consistent;
   *  filesystem: fail unless the guest's filesystems are frozen; crash: never freeze. */
  consistency?: ConsistencyMode;
}

export interface StartBackupResponse {
  job: Job;
  /** A backup of this VM was already queued or running: this is that job. */
  joined: boolean;
}

export interface PointList {
  points: PointSummary[];
  /** Pass as `before` to get the next (older) page; null on the last page. */
  nextBefore: string | null;
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
  /** The method the VM's next backup is foreseen to use (its policy's or the service's
   *  default, `auto` resolved as the backup resolves it); `chain` is foreseen for it. */
  nextMethod: PointMethod;
  chain: DiskChainHealth[];
  /** Names of the enabled policies that select this VM now; empty: it is in no policy. */
  policies: string[];
  /** Restore points of this VM a verify marked damaged (always sent by this service; optional
   *  only so that older answers still type-check). */
  damagedPoints?: number;
  /** What the caller may do to this VM's backups (the engine's permits; README, "Who may do
   *  what"): the portal disables what is false and says which permit is missing. */
  access: VmAccess;
}

/** Each flag: the caller holds the permits the action needs on the VM. */
export interface VmAccess {
  /** Backup now, Verify a point, cancel one's own backup: `backup_disk`. */
  backup: boolean;
  /** Download a disk image of a point: `backup_disk` on the VM and `edit_disk_properties` on
   *  each of its disks, or a backup admin (api/access.ts, the rule the download route applies). */
  download: boolean;
  /** Restore disks attached to this VM: `configure_vm_storage` (and `create_disk` on the
   *  storage domain, checked with the plan). */
  restoreInto: boolean;
}

export interface VmList {
  vms: VmSummary[];
}

/** A VM the engine no longer has, whose points the repository still holds (backup admins only). */
export interface DeletedVm {
  id: string;
  /** Its name in its newest point. */
  name: string;
  pointCount: number;
  lastPoint: PointSummary;
  /** The VM definition stored in that point, summarized (null: none, or unreadable). */
  ovf: OvfSummary | null;
}

export interface DeletedVmList {
  vms: DeletedVm[];
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

/** What `GET /health` tells anyone: up or down. */
export interface HealthStatus {
  status: 'ok' | 'degraded';
}

/** What it tells a caller with the scrape token or a portal user's token. */
export interface Health {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  checks: Array<{ name: 'catalog' | 'repository' | 'engine'; ok: boolean; message: string }>;
}

export interface WhoAmI {
  userId: string;
  userName: string;
  /** An engine SuperUser, or named in auth.backupAdmins: may manage what concerns every VM. */
  backupAdmin: boolean;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** Messages the browser sends on `/api/v1/events`. The first one must be `auth`. */
export type ClientMessage = { type: 'auth'; token: string } | { type: 'ping' };

/** Messages the service sends on `/api/v1/events`. */
export type ServerMessage =
  | { type: 'ready'; user: Pick<WhoAmI, 'userId' | 'userName'>; heartbeatSeconds: number }
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

export interface PolicyList {
  policies: Array<Policy & { nextRun: string | null }>;
}

export interface PolicyRunList {
  runs: PolicyRun[];
}

export interface PolicyRunResponse {
  run: PolicyRun;
}

/** Answer of `POST /points/:pointId/verify` and `POST /repository/verify`. */
export interface StartVerifyResponse {
  job: Job;
}

/** Answer of `POST /points/:pointId/bootcheck`. */
export interface StartBootCheckResponse {
  job: Job;
}

/** Answer of `GET /points/:pointId/bootcheck`: the point's last boot check as stored. */
export interface BootCheckView {
  pointId: string;
  state: 'ok' | 'failed' | 'timeout';
  /** Why, in words that quote no guest output. */
  reason: string;
  /** The console line that matched (none in an encrypted repository). */
  matchedLine: string | null;
  /** When the check started. */
  at: string;
  durationMs: number;
  accel: 'kvm' | 'tcg';
  /** Devices attached, the boot disk first. */
  disks: string[];
  /** The VM had no network controller (checked in QEMU). */
  noNetworkDevice: boolean;
  /** A screenshot is kept (`GET /points/:pointId/bootcheck/screenshot`). */
  screenshot: boolean;
}

// ---- file-level restore (Browse files…) ----

/** What a browsed name is: a regular file, a folder, a symlink, or what is never read. */
export type FileEntryType = 'file' | 'directory' | 'symlink' | 'char-device' | 'block-device' | 'fifo' | 'socket' | 'unknown';

/** A filesystem of the point as libguestfs found it. `name` is what `fs=` takes. */
export interface FileSystemView {
  /** libguestfs' device: `/dev/sda1`, `/dev/vg0/lv0` (the point's disks in order: sda, sdb…). */
  name: string;
  type: string;
  label: string | null;
  size: number | null;
  /** False when it would not mount (corrupt, damaged, unknown): `error` says why. */
  mounted: boolean;
  error: string | null;
}

/** `POST|GET /points/:pointId/files/session`: the caller's browsing session of the point. */
export interface FileSessionView {
  sessionId: string;
  pointId: string;
  /** `opening` while the appliance starts (~20 s under TCG): poll GET until `ready` or `failed`. */
  state: 'opening' | 'ready' | 'failed';
  disks: Array<{ device: string; applianceDevice: string; size: number }>;
  filesystems: FileSystemView[];
  /** Why it failed to open. */
  error: { code: string; message: string } | null;
  openedAt: string;
  lastUsedAt: string;
  /** The session closes after this long without a request. */
  idleSeconds: number;
}

/**
 * One name in a folder. Names are bytes (a guest's may hold newlines or bytes that are not
 * UTF-8): `nameB64` is exact, `name` an escaped display form (`\\`, `\n`, `\t`, `\xHH`).
 */
export interface FileEntry {
  name: string;
  nameB64: string;
  type: FileEntryType;
  /** Permission bits (st_mode & 07777). */
  mode: number;
  size: number;
  modifiedAt: string;
  uid: number;
  gid: number;
  /** A symlink's target (escaped like `name`). */
  target: string | null;
}

/** `GET /points/:pointId/files/list?fs=&path=` (or `pathB64=`). */
export interface FileListResponse {
  filesystem: string;
  path: string;
  pathB64: string;
  entries: FileEntry[];
  /** More entries than the service lists at once (10,000). */
  truncated: boolean;
}

/** A name found by `GET /points/:pointId/files/find?glob=`. */
export interface FoundFile {
  filesystem: string;
  path: string;
  pathB64: string;
  type: FileEntryType;
  mode: number;
  size: number;
  modifiedAt: string;
}

export interface FileFindResponse {
  glob: string;
  results: FoundFile[];
  /** More matched than `limit` (default 200, at most 1000). */
  truncated: boolean;
}
