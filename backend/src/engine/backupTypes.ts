/**
 * The engine's backup API entities (reference §4): backups, their disks, checkpoints, as the
 * rest of the backend sees them (camelCase, typed); the wire names live in parse/backup.ts.
 */
import type { DiskFormat } from './types';

/** `BackupPhase` (reference §4.2); unrecognised values are reported as 'unknown'. */
export const BACKUP_PHASES = ['unknown', 'initializing', 'starting', 'ready', 'finalizing', 'succeeded', 'failed'] as const;
export type BackupPhase = (typeof BACKUP_PHASES)[number];

/** `vms/{id}/backups/{id}` (reference §4.1). */
export interface VmBackup {
  id: string;
  phase: BackupPhase;
  /** The checkpoint this backup is incremental from; absent for a full. */
  fromCheckpointId: string | undefined;
  /** The checkpoint the backup created (set once `ready`): the next one's `fromCheckpointId`.
   *  Absent when the engine made none (only raw disks). */
  toCheckpointId: string | undefined;
  description: string | undefined;
  creationDate: Date | undefined;
  modificationDate: Date | undefined;
  vmId: string | undefined;
  hostId: string | undefined;
  /** Hybrid (snapshot-based) backup: the snapshot the engine made for it. */
  snapshotId: string | undefined;
}

/** A disk of an engine backup: how the engine will serve it. */
export interface BackupDisk {
  id: string;
  alias: string | undefined;
  /** `incremental`: dirty extents since the checkpoint are available; `full`: the whole disk. */
  backupMode: 'full' | 'incremental' | undefined;
  format: DiskFormat | undefined;
  provisionedSize: number | undefined;
}

export const CHECKPOINT_STATES = ['created', 'invalid'] as const;
export type CheckpointState = (typeof CHECKPOINT_STATES)[number];

/** `vms/{id}/checkpoints/{id}` (reference §4.6). */
export interface Checkpoint {
  id: string;
  parentId: string | undefined;
  creationDate: Date | undefined;
  /** `invalid` e.g. after a revert to an older snapshot: no incremental can start from it. */
  state: CheckpointState | undefined;
  description: string | undefined;
  vmId: string | undefined;
}
