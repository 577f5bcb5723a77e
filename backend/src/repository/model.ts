/**
 * The repository's values that upper layers and the UI name: why a disk was copied whole, what
 * an audit record is about, the retention rules. Browser-safe (no Node): the UI plugin reads
 * them through api/contract.ts with `import type`.
 */

/** Why a disk was copied whole instead of incrementally (a manifest disk's `reason`). */
export const FULL_REASONS = [
  'first-backup',
  'bitmap-missing',
  'bitmap-inconsistent',
  'bitmap-not-recording',
  'bitmap-busy',
  'bitmap-mismatch',
  'disk-resized',
  'node-changed',
  'parent-missing',
  /** verify marked the disk of the VM's previous point damaged: a full stores fresh chunks */
  'parent-damaged',
  'forced',
  /** the VM's previous point was made by the other backup method (qmp ↔ engine): neither's
   *  change tracking covers the time between them */
  'method-changed',
  /** engine method: the disk is not enabled for incremental backup (raw, or qcow2 with
   *  `backup: none`): the engine can only copy it whole */
  'disk-not-incremental',
  /** engine method: the engine no longer has the checkpoint of the VM's previous point */
  'checkpoint-missing',
  /** engine method: the engine marked that checkpoint invalid (a snapshot revert broke the chain) */
  'checkpoint-invalid',
  /** engine method: the engine answered `backup_mode=full` for the disk (a disk not in the
   *  checkpoint, checkpoints it could not redefine on the host...) */
  'engine-full',
] as const;
export type FullReason = (typeof FULL_REASONS)[number];

/** Which backup method made a point (`PointMeta.method`): QEMU's monitor + NBD on the host
 *  (`qmp`), or the engine's backup API + imageio (`engine`). Points without it are `qmp`. */
export const POINT_METHODS = ['qmp', 'engine'] as const;
export type PointMethod = (typeof POINT_METHODS)[number];

/** What a record of the repository's audit log is about (FORMAT.md §12). */
export const AUDIT_ACTIONS = ['delete', 'delete-failed', 'prune', 'lock-extend', 'unlock', 'gc', 'damage-mark', 'damage-clear', 'chunk-quarantine', 'upgrade'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** GFS retention rules, in the order results list them (`keptBy`). */
export const GFS_RULES = ['last', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type GfsRule = (typeof GFS_RULES)[number];

/** What this program reads a point for (a read lease, FORMAT.md §15); refusals of a deletion name
 *  it. Only taking a lease checks it: a lease a newer program took for another purpose is read,
 *  and protects its point, all the same. */
export const LEASE_PURPOSES = ['restore', 'download', 'verify', 'export', 'browse', 'sync'] as const;
export type LeasePurpose = (typeof LEASE_PURPOSES)[number];

/** The repository formats this program reads and writes (FORMAT.md): 1 (a file per chunk) and 2
 *  (pack files, tree indexes, optional encryption). */
export const REPO_VERSIONS = [1, 2] as const;
export type RepoVersion = (typeof REPO_VERSIONS)[number];
/** What `repo init` and the service's embedded default make when not told otherwise. */
export const DEFAULT_REPO_VERSION: RepoVersion = 2;
/** Encryption a repository can be made with (format 2). */
export const REPO_ENCRYPTIONS = ['none', 'aes-256-gcm'] as const;
export type RepoEncryptionName = (typeof REPO_ENCRYPTIONS)[number];
