/**
 * What the next backup of a disk will be, as the VM list forecasts it (chainForecast.ts).
 * Browser-safe types: the UI plugin reads them through api/contract.ts with `import type`.
 */
import type { FullReason, PointMethod } from '../repository/model';

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

/**
 * How a backup reads the VM (a repository default, a policy's, a Backup now's choice):
 * - `qmp`: QEMU's monitor and NBD through the host link (dirty bitmaps the product keeps);
 * - `engine`: the engine's backup API and imageio (checkpoints the engine keeps), needing
 *   nothing but an engine account;
 * - `auto`: `qmp` when a host link is configured for the VM's host and the VM runs, `engine`
 *   otherwise (a VM that is down is backed up cold by the engine, never started).
 */
export const BACKUP_METHODS = ['auto', 'qmp', 'engine'] as const;
export type BackupMethod = (typeof BACKUP_METHODS)[number];

/**
 * How consistent a point must be: `auto` freezes the guest's filesystems when its agent
 * answers and falls back to crash-consistent with the reason recorded; `filesystem` fails the
 * backup when the freeze fails (the engine method: `require_consistency=true`); `crash` never
 * freezes.
 */
export const CONSISTENCY_MODES = ['auto', 'filesystem', 'crash'] as const;
export type ConsistencyMode = (typeof CONSISTENCY_MODES)[number];

/** Statuses in which QEMU runs and holds the disks as the guest sees them. */
export const RUNNING_VM_STATUSES: readonly string[] = ['up', 'paused', 'powering_up', 'reboot_in_progress', 'powering_down'];

/** `auto` resolved, the one rule the backup and the VM list's forecast share: the QMP method
 *  when the VM runs and the host link reaches its host, else the engine method (a VM that is
 *  down is backed up cold, never started). */
export function autoMethod(vmStatus: string, hostLinked: boolean): PointMethod {
  return RUNNING_VM_STATUSES.includes(vmStatus) && hostLinked ? 'qmp' : 'engine';
}
