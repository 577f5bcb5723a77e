import type { BackupDisk, Checkpoint, VmBackup } from '../backupTypes';
import { BACKUP_PHASES, CHECKPOINT_STATES } from '../backupTypes';
import type { DiskFormat } from '../types';
import { Fields, listOf, type Json } from './fields';

/** The engine backup API's entities (reference §4): backups, their disks, checkpoints. */

const FORMATS: readonly DiskFormat[] = ['cow', 'raw'];
const MODES = ['full', 'incremental'] as const;

export function parseBackup(o: Json): VmBackup {
  const f = new Fields('backup', o);
  return {
    id: f.reqStr('id'),
    phase: f.enumOf('phase', BACKUP_PHASES, 'unknown') ?? 'unknown',
    fromCheckpointId: f.str('from_checkpoint_id') || undefined,
    toCheckpointId: f.str('to_checkpoint_id') || undefined,
    description: f.str('description'),
    creationDate: f.date('creation_date'),
    modificationDate: f.date('modification_date'),
    vmId: f.refId('vm'),
    hostId: f.refId('host'),
    snapshotId: f.refId('snapshot'),
  };
}

export function parseBackups(body: unknown): VmBackup[] {
  return listOf(body, 'backup', 'backup list').map(parseBackup);
}

export function parseBackupDisks(body: unknown): BackupDisk[] {
  return listOf(body, 'disk', 'backup disk list').map((o) => {
    const f = new Fields('backup disk', o);
    return {
      id: f.reqStr('id'),
      alias: f.str('alias') ?? f.str('name'),
      // an unknown mode is not trusted as incremental: undefined reads as full
      backupMode: f.enumOf('backup_mode', [...MODES, 'unknown'] as const, 'unknown') === 'incremental' ? 'incremental' : f.has('backup_mode') ? 'full' : undefined,
      format: f.enumOf('format', FORMATS),
      provisionedSize: f.int64('provisioned_size'),
    };
  });
}

export function parseCheckpoint(o: Json): Checkpoint {
  const f = new Fields('checkpoint', o);
  const state = f.str('state')?.toLowerCase();
  return {
    id: f.reqStr('id'),
    parentId: f.str('parent_id') || undefined,
    creationDate: f.date('creation_date'),
    // an unknown state is not trusted as usable
    state: state === undefined ? undefined : (CHECKPOINT_STATES as readonly string[]).includes(state) ? (state as Checkpoint['state']) : 'invalid',
    description: f.str('description'),
    vmId: f.refId('vm'),
  };
}

export function parseCheckpoints(body: unknown): Checkpoint[] {
  return listOf(body, 'checkpoint', 'checkpoint list').map(parseCheckpoint);
}
