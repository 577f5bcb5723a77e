export { restoreToFile } from './toFile';
export type { RestoreToFileRequest, RestoreToFileResult } from './toFile';
export { QemuNbdServer } from './qemuNbd';
