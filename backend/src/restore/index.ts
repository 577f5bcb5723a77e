/** "Restore this point": into the engine (plan, execute), to a file, as a download, as the
 *  source of an NBD export (pointExport.ts), booted in an isolated VM (bootCheck.ts). */
export { restoreToFile } from './toFile';
export type { RestoreToFileRequest, RestoreToFileResult } from './toFile';
export { QemuNbdServer } from './qemuNbd';
export { rawImageStream } from './download';
export { executeRestore } from './engine';
export type { ExecuteDeps, RestoreResult, RestoredDisk, RestoreProgress, RestorePhase, RestoreTimeouts, UploadStats } from './engine';
export type * from './model';
export { RESTORE_PROBLEM_CODES } from './model';
export { PointImages } from './images';
export { OpenRestore, PointRestorer } from './pointRestore';
export type { PlanViewOptions, PointRestoreDeps, RestoreRunOptions } from './pointRestore';
export { openPoint } from './pointSource';
export type { PointSource, ReadPurpose } from './pointSource';
export { planRestore, planView, pointDataBytes, readInventory } from './plan';
export type { RestorePlan, RestoreInventory, PlannedDisk, PlannedNic, UsableTargets } from './plan';
export { PointExport, findDisk } from './pointExport';
export type { PointExportOptions } from './pointExport';
export { bootCheck, DEFAULT_EXPECT, FAILURE_PATTERN } from './bootCheck';
export type { BootCheckOptions, BootCheckResult } from './bootCheck';
export { BrowseSession, MAX_FIND_RESULTS, MAX_LIST_ENTRIES } from './fileBrowse';
export type { BrowseEntry, BrowseOptions, BrowsePath, FoundEntry } from './fileBrowse';
export type { BrowseDisk, BrowseFilesystem, BrowseLayout } from './fileBrowseAppliance';
export { displayName, parseDisplayName } from './fileBrowsePaths';
export type { FileStat, FileType } from './fileBrowsePaths';
export { PointMount } from './fileMount';
export type { PointMountOptions } from './fileMount';
