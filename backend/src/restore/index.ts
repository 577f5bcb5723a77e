export { restoreToFile } from './toFile';
export type { RestoreToFileRequest, RestoreToFileResult } from './toFile';
export { QemuNbdServer } from './qemuNbd';
export { rawImageStream } from './download';
export { executeRestore } from './engine';
export type { ExecuteDeps, RestoreResult, RestoredDisk, RestoreProgress, RestorePhase, RestoreTimeouts, UploadStats } from './engine';
export type * from './model';
export { RESTORE_PROBLEM_CODES } from './model';
export { PointImages } from './images';
