/** The backup method: which disks copy whole and why, one QMP transaction, fleecing, the extent
 *  copy into the repository, rollback; the engine-aware backup of a VM; the chain forecast. */
export { runBackup } from './runBackup';
export type { BackupRequest, BackupResult, BackupProgress } from './types';
export { BITMAP_PREFIX, isOurBitmap, isFrozenBitmap } from './names';
export { planChunks } from './chunkPlan';
export { planDisk } from './chainCheck';
export { engineVmBackup } from './engineVmBackup';
export type { EngineVmBackupRequest, EngineVmBackupResult } from './engineVmBackup';
export { chainHealth } from './chainForecast';
export type { LastPoint } from './chainForecast';
