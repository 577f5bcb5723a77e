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
// format 2 encryption (repoKey.ts, keyFiles.ts, paperKey.ts)
export { newRepoKey, repoKeyFromBytes, repoKeyBytes, chunkId, sealBlob, openBlob, sealJson, openJson, manifestAad, keyCheck, checkKey } from './repoKey';
export type { RepoKey } from './repoKey';
export {
  createKeyFile,
  unlockRepository,
  listKeys,
  addKey,
  removeKey,
  changePassphrase,
  recoverWithPaper,
  readRepoIdentity,
  DEFAULT_SCRYPT,
} from './keyFiles';
export { KEYS_DIR } from './layout';
export type { RepoEncryption, RepoVersion } from './config';
export type { RepositoryOptions, InitOptions } from './repository';
export type { KeyInfo, KeyFileOptions, ScryptParams, Unlocked } from './keyFiles';
export { paperKey, parsePaperKey, parsePaper } from './paperKey';
export type { PaperKey } from './paperKey';
// upgrading a format-1 repository in place (FORMAT.md §22)
export { upgradeRepository } from './upgrade';
export type { UpgradeOptions, UpgradeProgress, UpgradeReport, CorruptChunk, PointProblem } from './upgrade';
export { DEFAULT_REPO_VERSION, DEFAULT_PACK_SIZE, REPO_VERSIONS } from './config';
export { BOOTCHECKS_DIR, BOOT_CHECK_STATES, bootCheckScreenshotPath, clearBootCheck, readBootCheck, writeBootCheck } from './bootChecks';
export type { BootCheckRecord, BootCheckState } from './bootChecks';
// remote repositories on object storage (FORMAT.md §24; store/open.ts)
export { openRepo, initRepo, parseRepoLocation, openRepoOnStore, initRepoOnStore, REMOTE_FILE } from './store/open';
export type { RepoSpec, RemoteRepoOptions, RemoteInitOptions } from './store/open';
export type { S3Config } from './store/s3Config';
export { WRITER_LEASE_KEY } from './store/writerLease';
export type { WriterLeaseRecord } from './store/writerLease';
// copying points between repositories (repo sync, the off-site copy)
export { syncRepositories } from './sync';
export type { SyncOptions, SyncProgress, SyncPointResult, SyncReport } from './sync';
export { remoteStatus, s3ConfigOf } from './store/remoteStatus';
export type { RemoteStatus } from './store/remoteStatus';
