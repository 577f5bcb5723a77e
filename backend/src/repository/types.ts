/**
 * The repository's public data types. The on-disk encoding of these is specified in FORMAT.md
 * beside this file; anything written there as JSON uses exactly these field names.
 */

/** How a VM is known to the repository: `key` is the stable directory-safe identity
 *  (the engine id when there is one, else the sanitized name). */
export interface VmIdentity {
  key: string;
  name: string;
  id?: string;
}

/** Why a disk was copied whole instead of incrementally. */
export type FullReason =
  | 'first-backup'
  | 'bitmap-missing'
  | 'bitmap-inconsistent'
  | 'bitmap-not-recording'
  | 'bitmap-busy'
  | 'bitmap-mismatch'
  | 'disk-resized'
  | 'node-changed'
  | 'parent-missing'
  | 'forced';

export interface ManifestDisk {
  /** qdev id of the guest device (e.g. `virtio-disk0`); the disk's name inside a point. */
  device: string;
  /** QEMU block node the data was read from (top format node at backup time). */
  node: string;
  /** QEMU driver of that node: qcow2, raw, ... */
  format: string;
  virtualSize: number;
  mode: 'full' | 'incremental';
  /** For full: a FullReason. For incremental: 'incremental'. */
  reason: FullReason | 'incremental';
  /** Dirty bitmap that, after this point, records changes relative to this point. */
  bitmap: string;
  /** Whether `bitmap` survives a clean QEMU restart (qcow2 v3) or lives in memory only (raw). */
  bitmapPersistent: boolean;
  /** Bytes read from QEMU over NBD for this point. */
  bytesRead: number;
  /** Chunks of this image that were not in the repository before this point. */
  chunksNew: number;
  /** Chunks read or referenced that were already stored (dedup hits + chunks carried over). */
  chunksReused: number;
  /** Chunks that are all zero (never stored). */
  chunksZero: number;
  /** Compressed bytes this point added to the chunk store. */
  bytesStored: number;
  /** File name of the disk's index inside the point directory, and its SHA-256 (hex). */
  index: { file: string; sha256: string; chunkCount: number };
  /** Optional manager-specific metadata (engine disk id, alias, description...). */
  meta?: Record<string, unknown>;
}

export interface Manifest {
  format: 'olvm-backup-point';
  version: 1;
  pointId: string;
  vm: VmIdentity;
  /** ISO 8601, UTC: the instant of the backup transaction. */
  createdAt: string;
  /** ISO 8601, UTC: when the manifest was written. */
  completedAt: string;
  /** Point this one was built on (the VM's previous point), if any disk is incremental. */
  parentPointId: string | null;
  consistency: 'crash' | 'filesystem';
  chunkSize: number;
  disks: ManifestDisk[];
  /** The VM's definition in its manager's language (OVF, libvirt XML...), stored verbatim. */
  vmDefinition: { kind: string; content: string } | null;
  /** Retention lock: ISO date until which the point may not be deleted; null = unlocked. */
  lockedUntil: string | null;
  /** Free-form, for upper layers (job id, tool version...). */
  meta: Record<string, unknown>;
}

/** Per-disk data supplied by the backup when the point is committed; the repository adds the
 *  chunk accounting and index fields itself. */
export type ManifestDiskInput = Omit<
  ManifestDisk,
  'chunksNew' | 'chunksReused' | 'chunksZero' | 'bytesStored' | 'index' | 'virtualSize'
>;

export interface PointSummary {
  pointId: string;
  vm: VmIdentity;
  createdAt: string;
  disks: Array<Pick<ManifestDisk, 'device' | 'mode' | 'reason' | 'virtualSize' | 'bytesRead' | 'bytesStored'>>;
}

export interface VerifyProblem {
  pointId: string;
  device: string | null;
  /** chunk digest (hex) when the problem is a chunk */
  chunk: string | null;
  /** byte offsets in the disk image the bad chunk occupies (first one) */
  offset: number | null;
  kind: 'chunk-missing' | 'chunk-corrupt' | 'index-missing' | 'index-corrupt' | 'manifest-corrupt';
  message: string;
}

export interface VerifyReport {
  pointsChecked: number;
  chunksChecked: number;
  bytesChecked: number;
  problems: VerifyProblem[];
  ok: boolean;
}
