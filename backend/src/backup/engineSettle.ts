import { AppError } from '../errors';
import type { EngineClient } from '../engine';
import type { EngineBackupRef } from './engineVmBackup';

// PLACEHOLDER of the contract branch e17-base: branch e17-core replaces this file.
export function settleEngineBackup(_engine: EngineClient, ref: EngineBackupRef, _signal?: AbortSignal): Promise<string> {
  return Promise.reject(new AppError('BACKUP_FAILED', `settling engine backup ${ref.backupId}: not built yet`));
}
