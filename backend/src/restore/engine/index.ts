export { executeRestore } from './execute';
export type { ExecuteDeps, RestoreResult, RestoredDisk, RestoreProgress, RestorePhase, RestoreTimeouts, UploadStats } from './types';
