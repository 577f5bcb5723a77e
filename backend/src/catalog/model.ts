/**
 * What the catalog shows of the repository and the audit files: a restore point's summary and
 * detail, and audit entries. Browser-safe types: the UI plugin reads them through
 * api/contract.ts with `import type`.
 */
import type { AuditAction, FullReason, PointMethod } from '../repository/model';

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
  /** The method that made the point: QEMU's monitor on the host, or the engine's backup API. */
  method: PointMethod;
  /** Sum over disks. */
  virtualSize: number;
  bytesRead: number;
  bytesStored: number;
  /** Seconds from the transaction to the manifest. */
  durationSeconds: number;
  lockedUntil: string | null;
  disks: PointDisk[];
  /** The point's last boot check (repository/bootChecks.ts): its verdict and when it started;
   *  null when it was never boot-checked. */
  bootCheck: PointBootCheck | null;
}

export interface PointBootCheck {
  state: 'ok' | 'failed' | 'timeout';
  at: string;
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

/** What the service records in its own audit file (the repository records deletions, locks,
 *  damage: AUDIT_ACTIONS). */
export const SERVICE_AUDIT_KINDS = ['auth-failure', 'access-denied', 'restore', 'policy-create', 'policy-update', 'policy-delete', 'policy-run', 'file-restore'] as const;
export type ServiceAuditKind = (typeof SERVICE_AUDIT_KINDS)[number];

/** What an audit entry is about: repository actions (FORMAT.md §12) and the service's own. */
export type AuditKind = AuditAction | ServiceAuditKind;

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

/** A page of the audit log, newest first. */
export interface AuditList {
  /** Newest first (by time; records written together keep their order, reversed). */
  entries: AuditEntry[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}
