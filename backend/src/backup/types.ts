import type { HostLink } from '../hosts';
import type { Progress } from '../util/progress';
import type { GuestAgent, QmpSession } from '../qmp';
import type { DiskMeta, Manifest, PointMeta, Repository, VmIdentity } from '../repository';
import type { ConsistencyMode } from './model';

/** starting-vm / stopping-vm: a VM that was down is started paused for the backup and stopped
 *  again (engine-aware backups only). */
export type BackupPhase = 'starting-vm' | 'preparing' | 'frozen' | 'copying' | 'committing' | 'stopping-vm' | 'done';

/** `disk`: the device id (runBackup) or the engine alias (engineVmBackup) being copied. */
export type BackupProgress = Progress<BackupPhase>;

export interface BackupRequest {
  vm: VmIdentity;
  qmp: QmpSession;
  host: HostLink;
  repository: Repository;
  /** Directory on the VM's host for fleece images and the NBD socket (a unix socket path must
   *  stay under 108 bytes). */
  scratchDir: string;
  /** Only these device ids (default: every writable disk). */
  devices?: string[];
  /** Bitmaps in QEMU memory only, even on qcow2 — when another product also keeps bitmaps
   *  on these disks (DESIGN.md §2 "Coexistence"). */
  transientBitmaps?: boolean;
  forceFull?: boolean;
  /** Days the point is under a retention lock, counted from its commit (default 0: none). The
   *  lock is in the manifest the point appears with, so no prune or deletion can ever see the
   *  point unlocked. */
  lockDays?: number;
  vmDefinition?: Manifest['vmDefinition'];
  /** Stored in the manifest's `meta` (repository/pointMeta.ts: the one writer/reader pair). */
  meta?: PointMeta;
  /** Manager data stored with each disk in the manifest (engine disk id, alias...), by device. */
  diskMeta?: Record<string, DiskMeta>;
  /** `auto` (default): freeze the guest filesystems through the guest agent around the
   *  transaction when the agent answers, so the point is filesystem-consistent; `filesystem`:
   *  fail (BACKUP_NOT_CONSISTENT) when they cannot be frozen; `crash`: never freeze. */
  consistency?: ConsistencyMode;
  /** Opens the VM's guest agent channel (`VmHostLink.openGuestAgent`); absent = no agent known. */
  guestAgent?: () => Promise<GuestAgent>;
  /** Guest agent timeouts (ms): ping 2 s, freeze 30 s, each thaw attempt 10 s. */
  guestAgentTimeouts?: { pingMs?: number; freezeMs?: number; thawMs?: number };
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
  /** Called right after the transaction fixed the point in time, before any data is read. */
  onFrozen?: () => Promise<void> | void;
}

export interface BackupResult {
  manifest: Manifest;
  /** Cleanup steps that failed after the point was committed (the point is still good), and a
   *  guest thaw that failed (the guest may still be frozen). */
  warnings: string[];
}

/** An engine backup the product started: what a caller that may die records before the
 *  request, so that whoever picks up after it can finalize it (settleEngineBackup). */
export interface EngineBackupRef {
  vmId: string;
  /** The id the product chose for the engine backup (the engine accepts a client's id). */
  backupId: string;
}
