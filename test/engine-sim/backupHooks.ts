import type { Backups } from './backups';
import type { SimState } from './state';
import type { Transfers } from './transfers';

/** A checkpoint as stored (what `GET /vms/{id}/checkpoints` shows). */
export interface SimCheckpoint {
  id: string;
  parentId: string | null;
  state: 'created' | 'invalid';
  diskIds: string[];
}

/**
 * Test hooks for the backup API, reached as `sim.backup` (README.md "Test helpers"): timings and
 * cleanup times, faults in the backup phases and in imageio, and the engine-side events a test
 * cannot cause over REST (a snapshot revert invalidating checkpoints, a lost bitmap).
 */
export class SimBackupHooks {
  constructor(
    private readonly state: SimState,
    private readonly backups: Backups,
    private readonly transfers: Transfers,
  ) {}

  /** How long finished backups stay listed (engine: 15 min succeeded, 30 min failed). */
  setCleanup(p: { succeededMs?: number; failedMs?: number }): void {
    if (p.succeededMs !== undefined) this.backups.cleanup.succeededMs = p.succeededMs;
    if (p.failedMs !== undefined) this.backups.cleanup.failedMs = p.failedMs;
  }

  /** Length of each backup phase step (default 100 ms). */
  setStepDelay(ms: number): void {
    this.backups.stepDelayMs = ms;
  }

  /** The next backup started goes to `failed` in that phase (`starting`: live backups only). */
  failNext(phase: 'initializing' | 'starting' = 'initializing'): void {
    this.backups.failNextIn = phase;
  }

  /**
   * The next imageio GET of a transfer's data (any transfer when `transferId` is absent):
   * `error` answers 500, `hang` never answers, `truncate` sends half the body and drops the
   * connection.
   */
  imageioFaultNext(kind: 'error' | 'hang' | 'truncate', transferId?: string): void {
    this.transfers.imageioFaults.push({ kind, transferId });
  }

  /** As after a snapshot revert: every checkpoint of the VM turns `invalid`. */
  invalidateCheckpoints(vmId: string): void {
    this.backups.invalidateCheckpoints(vmId);
  }

  /** A checkpoint's bitmap disappears from one disk (live QEMU node or the qcow2 image). */
  async dropCheckpointBitmap(vmId: string, checkpointId: string, diskId: string): Promise<void> {
    await this.backups.dropBitmap(vmId, diskId, checkpointId);
  }

  /**
   * The cluster's compatibility version ('4.7' by default). From '4.7' on, `POST
   * /vms/{id}/backups` takes the hybrid (snapshot) path unless `legacy=true`.
   */
  setClusterVersion(version: string): void {
    if (!/^\d+\.\d+$/.test(version)) throw new Error(`engine simulator: not a cluster version: ${version}`);
    this.state.data.clusterVersion = version;
    this.state.save();
  }

  /** The VM's checkpoints, oldest first. */
  checkpoints(vmId: string): SimCheckpoint[] {
    return this.backups.checkpointsOf(vmId).map((c) => ({ id: c.id, parentId: c.parentId ?? null, state: c.state, diskIds: [...c.diskIds] }));
  }

  /** A backup's phase as stored, or null once it is gone. */
  phase(backupId: string): string | null {
    return this.state.data.backups.find((b) => b.id === backupId)?.phase ?? null;
  }
}
