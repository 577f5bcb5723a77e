/** The repository of restore points (FORMAT.md): chunks, indexes, manifests, locks, retention,
 *  garbage collection, verify, the audit log. */
export { Repository } from './repository';
export { PointWriter } from './pointWriter';
export { PointReader } from './pointReader';
export type { OpenPointOptions } from './pointReader';
export type { CommitParams } from './pointWriter';
export { DiskWriter } from './diskWriter';
export type { DiskStats } from './diskWriter';
export { DiskIndex } from './diskIndex';
export { newPointId, isPointId } from './pointId';
export { ZERO_DIGEST } from './digest';
export type { RepoConfig } from './config';
export type { LockInfo } from './locks';
export * from './types';
export { gfsPrune, localPeriods, GFS_RULES } from './gfs';
export type { GfsRules, GfsRule, GfsPoint, GfsDecision, LocalPeriods } from './gfs';
export { processActor } from './audit';
export type { AuditRecord, AuditAction } from './audit';
export type { PruneOptions } from './retention';
export type { GcOptions } from './gc';
export { FULL_REASONS, AUDIT_ACTIONS, LEASE_PURPOSES } from './model';
export type { LeasePurpose } from './model';
export { readPointMeta, readDiskMeta, diskLabel } from './pointMeta';
export type { PointMeta, DiskMeta, EngineVmMeta } from './pointMeta';
