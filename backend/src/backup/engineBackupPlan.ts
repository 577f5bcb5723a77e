/**
 * The engine method's decisions, as pure functions: which checkpoint a backup may start from,
 * and whether each disk's copy is incremental or full and why. As for the QMP method (chain-
 * Check.ts), any doubt means a full copy of the disk: a wrong incremental loses data silently.
 */
import type { Checkpoint, DiskFormat } from '../engine';
import { readPointMeta, type DamageMark, type FullReason, type Manifest, type ManifestDisk } from '../repository';

/** A disk's name inside a point for the engine method: oVirt's qdev alias, which the QMP method
 *  sees too, so points of both methods chain on the same names (E17 design, Naming). */
export function engineDeviceName(diskId: string): string {
  return `ua-${diskId}`;
}

/** The manifest's `format` for an engine disk format. */
export function engineDiskFormat(f: DiskFormat | undefined): string {
  return f === 'cow' ? 'qcow2' : f === 'raw' ? 'raw' : 'unknown';
}

/** What the VM's last point lets the backup start from. `reason`, when there is no checkpoint,
 *  is what every disk that would otherwise be incremental gets. */
export type CheckpointChoice = { fromCheckpointId: string; reason: undefined } | { fromCheckpointId: undefined; reason: FullReason };

/**
 * The checkpoint of the VM's last point, when that point was made by the engine method and the
 * engine still has it, valid. Never the engine's newest checkpoint: a failed backup of ours may
 * have left a newer one whose changes no point holds (reference §4.5-4.6), while the dirty
 * extents from our last point's checkpoint cover everything since that point.
 * `checkpoint`: the engine's answer for the parent's checkpoint (null = it does not have it).
 */
export function chooseCheckpoint(p: { parent: Manifest | undefined; forceFull: boolean; checkpoint: Checkpoint | null | undefined }): CheckpointChoice {
  if (!p.parent) return { fromCheckpointId: undefined, reason: 'first-backup' };
  if (p.forceFull) return { fromCheckpointId: undefined, reason: 'forced' };
  const meta = readPointMeta(p.parent);
  if (meta.method !== 'engine') return { fromCheckpointId: undefined, reason: 'method-changed' };
  const id = meta.engine?.checkpointId;
  if (!id || !p.checkpoint) return { fromCheckpointId: undefined, reason: 'checkpoint-missing' };
  if (p.checkpoint.id !== id) return { fromCheckpointId: undefined, reason: 'checkpoint-missing' };
  if (p.checkpoint.state !== 'created') return { fromCheckpointId: undefined, reason: 'checkpoint-invalid' };
  return { fromCheckpointId: id, reason: undefined };
}

/** The parent's checkpoint id the engine must be asked about, if chooseCheckpoint may use one. */
export function parentCheckpointId(parent: Manifest | undefined, forceFull: boolean): string | undefined {
  if (!parent || forceFull) return undefined;
  const meta = readPointMeta(parent);
  return meta.method === 'engine' ? meta.engine?.checkpointId : undefined;
}

export type EngineDiskPlan =
  | { mode: 'full'; reason: FullReason; previous: ManifestDisk | undefined }
  | { mode: 'incremental'; reason: 'incremental'; previous: ManifestDisk };

/**
 * One disk: incremental only when the engine serves its dirty extents (`backup_mode`
 * incremental from our checkpoint) and the parent holds an intact copy of the disk at the same
 * size. The reasons in the order the QMP method gives them, then the engine's own.
 */
export function planEngineDisk(p: {
  device: string;
  /** The engine disk's `backup` (incremental | none). */
  diskBackup: string | undefined;
  virtualSize: number;
  parent: Manifest | undefined;
  checkpoint: CheckpointChoice;
  /** The engine's `backup_mode` for the disk in this backup. */
  backupMode: 'full' | 'incremental' | undefined;
  forceFull: boolean;
  parentDamage?: Pick<DamageMark, 'devices'> | null;
}): EngineDiskPlan {
  const previous = p.parent?.disks.find((d) => d.device === p.device);
  if (!p.parent || !previous) return { mode: 'full', reason: 'first-backup', previous };
  if (p.forceFull) return { mode: 'full', reason: 'forced', previous };
  if (p.checkpoint.reason === 'method-changed') return { mode: 'full', reason: 'method-changed', previous };
  const damage = p.parentDamage;
  if (damage && (damage.devices === null || damage.devices.includes(p.device))) return { mode: 'full', reason: 'parent-damaged', previous };
  if (previous.virtualSize !== p.virtualSize) return { mode: 'full', reason: 'disk-resized', previous };
  if (p.diskBackup !== 'incremental') return { mode: 'full', reason: 'disk-not-incremental', previous };
  if (p.checkpoint.reason) return { mode: 'full', reason: p.checkpoint.reason, previous };
  if (p.backupMode !== 'incremental') return { mode: 'full', reason: 'engine-full', previous };
  return { mode: 'incremental', reason: 'incremental', previous };
}
