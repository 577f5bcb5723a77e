/** The backup method: which disks copy whole and why, one QMP transaction, fleecing, the extent
 *  copy into the repository, rollback; the engine-aware backup of a VM; the chain forecast. */
import type { EngineBackupRef, EngineVmBackupRequest, EngineVmBackupResult } from './engineVmBackup';
import type { EngineClient } from '../engine';

export { runBackup } from './runBackup';
export type { BackupRequest, BackupResult, BackupProgress } from './types';
export { BITMAP_PREFIX, isOurBitmap, isFrozenBitmap } from './names';
export { planChunks } from './chunkPlan';
export { planDisk } from './chainCheck';
export type { EngineVmBackupRequest, EngineVmBackupResult, EngineBackupRef } from './engineVmBackup';
export { BACKUP_METHODS, CONSISTENCY_MODES } from './model';
export type { BackupMethod, ConsistencyMode } from './model';
export { chainHealth } from './chainForecast';
export type { LastPoint } from './chainForecast';

/**
 * The backup of a VM the engine names (engineVmBackup.ts). Its module, and with it the engine
 * client, loads on the first call: a backup by QMP socket (`olvm-backup backup --qmp`) needs
 * neither, and a CLI command should not spend its start-up loading them.
 */
export async function engineVmBackup(req: EngineVmBackupRequest): Promise<EngineVmBackupResult> {
  const m = await import('./engineVmBackup');
  return m.engineVmBackup(req);
}

/**
 * Finalizes an engine backup a process that died left behind (found by the id it recorded
 * through `onEngineBackup`), and ends the image transfers still open for it. Returns what it
 * did, for the job's log; throws when the engine could not be asked.
 */
export async function settleEngineBackup(engine: EngineClient, ref: EngineBackupRef, signal?: AbortSignal): Promise<string> {
  const m = await import('./engineSettle');
  return m.settleEngineBackup(engine, ref, signal);
}
