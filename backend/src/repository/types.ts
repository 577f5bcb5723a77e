import type { FullReason, GfsRule } from './model';

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

export type { FullReason } from './model';

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
  /** The point's retention lock (Manifest.lockedUntil). */
  lockedUntil: string | null;
  disks: Array<Pick<ManifestDisk, 'device' | 'mode' | 'reason' | 'virtualSize' | 'bytesRead' | 'bytesStored'>>;
}

export interface VerifyProblem {
  /** The point concerned; null for a problem of the repository's own files (format 2: a pack
   *  file or a repository index file), found by a verify of the whole repository. */
  pointId: string | null;
  device: string | null;
  /** chunk digest (hex) when the problem is a chunk */
  chunk: string | null;
  /** byte offsets in the disk image the bad chunk occupies (first one) */
  offset: number | null;
  kind: VerifyProblemKind;
  message: string;
  /** Format 2: the pack file (its name, sha256 hex) that holds the bad chunk or index node, or
   *  the damaged or missing pack itself. */
  pack?: string;
  /** Format 2, index-corrupt: the id (hex) of the index tree node that cannot be read. */
  node?: string;
  /** Format 2, pack-corrupt and pack-truncated: the ids (hex) of the pack's blobs that fail
   *  their check (empty when only the pack's table or footer is damaged). */
  blobs?: string[];
  /** Format 2, pack-missing: how many blobs the repository index places in the pack. */
  blobCount?: number;
  /** Format 2, repo-index-corrupt: the repository index file (its name under index/). */
  indexFile?: string;
}

/**
 * What verify found wrong. Per point: a chunk missing or corrupt, a disk index missing or
 * corrupt (format 2 also: one of its tree nodes), the manifest. Format 2, whole-repository
 * verify only (pointId null): a pack whose content does not match its footer or name
 * (`pack-corrupt`), a pack cut short (`pack-truncated`), a pack the repository index names that
 * is not there (`pack-missing`), a repository index file that cannot be read (`repo-index-corrupt`).
 */
export type VerifyProblemKind =
  | 'chunk-missing'
  | 'chunk-corrupt'
  | 'index-missing'
  | 'index-corrupt'
  | 'manifest-corrupt'
  | 'pack-corrupt'
  | 'pack-truncated'
  | 'pack-missing'
  | 'repo-index-corrupt';

/** One point's verdict in a verify run. */
export interface VerifyPointResult {
  pointId: string;
  /** null when the manifest could not be read */
  vmKey: string | null;
  status: 'ok' | 'damaged';
  /** Disks with a bad chunk or index; null when the point as a whole is unreadable (manifest). */
  damagedDevices: string[] | null;
  problems: number;
}

export interface VerifyReport {
  pointsChecked: number;
  chunksChecked: number;
  bytesChecked: number;
  problems: VerifyProblem[];
  ok: boolean;
  /** Per checked point, in id order. */
  points: VerifyPointResult[];
  /** With repair (the default): chunk digests whose corrupt files were moved to quarantine/
   *  (format 2: ids of blobs whose corrupt copies were recorded in quarantine/, never read again). */
  quarantined: string[];
  /** Format 2, whole-repository verify: pack files and repository index files checked. */
  packsChecked?: number;
  indexFilesChecked?: number;
  /** With repair: points newly marked damaged (damaged/<pointId>.json). */
  marked: string[];
  /** With repair: points whose damage mark was cleared because they verified whole again. */
  cleared: string[];
}

/** `damaged/<pointId>.json` (FORMAT.md §11): a point verify found damaged. */
export interface DamageMark {
  pointId: string;
  vmKey: string | null;
  /** First verify that found the point damaged. */
  markedAt: string;
  /** Latest verify that found it damaged. */
  verifiedAt: string;
  /** Disks with a bad chunk or index; null = the whole point (its manifest is unreadable). */
  devices: string[] | null;
  /** The problems found (at most 100). */
  problems: Array<Pick<VerifyProblem, 'device' | 'chunk' | 'offset' | 'kind'>>;
}

/** `leases/<pointId>.<leaseId>.json` (FORMAT.md §15): a point being read. */
export interface LeaseInfo {
  pointId: string;
  /** One of LEASE_PURPOSES when this program took the lease; any non-empty text when a newer
   *  one did (FORMAT.md §15). */
  purpose: string;
  /** Who reads, in the holder's words (a job, a user, `cli:<user>@<host>`); refusals do not show it. */
  holder: string;
  pid: number;
  hostname: string;
  bootId: string | null;
  startedAt: string;
  /** Renewed by the holder while it reads; a lease past it is dead, whoever holds it. */
  expiresAt: string;
}

export interface Lease extends LeaseInfo {
  leaseId: string;
}

export interface DeleteResult {
  pointId: string;
  vmKey: string;
  /** The point left points/ at once, but a running writer of its VM may build on it: its
   *  directory waits in trash/ until garbage collection finds that writer gone. */
  deferred: boolean;
}

export interface PruneDecision {
  pointId: string;
  vmKey: string;
  vmName: string;
  createdAt: string;
  /** keep: a rule keeps it; remove: no rule does (removed unless dry run); locked: no rule
   *  keeps it but its retention lock does (skipped); leased: no rule or lock keeps it, but it is
   *  being read (a live read lease), so it stays until a later prune. */
  action: 'keep' | 'remove' | 'locked' | 'leased';
  keptBy: GfsRule[];
  lockedUntil: string | null;
  /** `leased` decisions only: what reads the point and since when. */
  leased?: { purpose: string; since: string };
}

export interface PruneReport {
  dryRun: boolean;
  timeZone: string;
  /** The instant retention locks were judged at. */
  now: string;
  rules: { keepLast: number; daily: number; weekly: number; monthly: number; yearly: number };
  /** Every point considered: by VM key, newest first within a VM. */
  points: PruneDecision[];
  /** Removed (or, in a dry run, to be removed). */
  removed: string[];
  /** Of `removed`: gone from points/, but waiting in trash/ for a running writer of the same
   *  VM or a reader that opened it just before (see DeleteResult). */
  deferred: string[];
  /** Not kept by any rule but locked: skipped. */
  locked: string[];
  /** Remote repository (FORMAT.md §24): of `locked`, the points whose lock in the repository had
   *  ended but whose manifest the store still refused to delete (Object Lock retention runs, e.g.
   *  after an operator's unlock on a compliance bucket): kept whole, "still locked". */
  stillLocked?: string[];
  /** The `leased` decisions: being read under a read lease, left for a later prune (not in
   *  `removed`). */
  leased: string[];
  kept: number;
}

export interface GcReport {
  dryRun: boolean;
  graceMs: number;
  /** Unreferenced chunks modified at or after this instant were kept. */
  cutoff: string;
  /** VM write locks live when the collection started (their writers are protected). */
  liveWriters: number;
  pointsMarked: number;
  /** Distinct chunks referenced by points, trash, staging and live writers. */
  chunksReferenced: number;
  chunksScanned: number;
  /** Removed (dry run: would be removed). */
  chunksRemoved: number;
  bytesRemoved: number;
  /** Unreferenced but younger than the cutoff. */
  chunksKeptYoung: number;
  /** Moved aside but put back because a writer reused them meanwhile. */
  chunksPutBack: number;
  /** Chunk files a crashed earlier collection had moved aside, put back first. */
  leftoversRestored: number;
  /** Deleted points removed from trash/ (their writers are gone). */
  trashPurged: string[];
  /** Deleted points still waiting in trash/ for a running writer or a reader's lease. */
  trashKept: string[];
  /** Points (in points/ or trash/) with a live read lease when the collection started. */
  leasedPoints: string[];
  /** Chunks kept only because a deleted point that is still being read references them. */
  chunksKeptForLeases: number;
  /** Lease files of readers that are gone (or expired), removed. */
  leasesRemoved: number;
  seconds: number;
  // Format 2 (packs; FORMAT.md §20). There the chunk counts above count blobs (chunks and index
  // tree nodes): chunksScanned = blobs the repository index places in the packs found,
  // chunksRemoved = blobs dropped, chunksKeptYoung = unreferenced blobs in packs younger than the
  // cutoff, chunksPutBack = unreferenced blobs of packs put back, leftoversRestored = packs; and
  // bytesRemoved = bytes of pack files removed less the bytes of the packs repacking wrote.
  /** Pack files found under packs/. */
  packsScanned?: number;
  /** Packs modified at or after the cutoff: not looked at. */
  packsKeptYoung?: number;
  /** Packs removed: wholly unreferenced ones and those repacked (dry run: would be removed). */
  packsRemoved?: number;
  /** Of packsRemoved: packs whose live blobs were copied into new packs first. */
  packsRepacked?: number;
  /** Packs moved aside but put back because a writer relied on them meanwhile. */
  packsPutBack?: number;
  /** New packs written by repacking. */
  packsWritten?: number;
  /** Stored bytes of the live blobs copied by repacking (dry run: that would be copied). */
  bytesRepacked?: number;
  /** Repository index files replaced by the one consolidated index file. */
  indexFilesMerged?: number;
  /** Live blobs found corrupt while repacking: not copied, and their pack was left as it is
   *  (verify reports and quarantines them). */
  corruptBlobs?: Array<{ blob: string; pack: string; message: string }>;
  /** Remote repository (FORMAT.md §24): packs the collection would remove or repack but whose
   *  Object Lock retention in the store still runs (the store refuses their deletion): left as
   *  they are, "still locked", until a later collection. */
  packsStillLocked?: string[];
  /** Remote repository: multipart uploads a crashed or cut-off writer left unfinished (older
   *  than the grace period), aborted so that no orphan parts stay in the store. */
  staleUploadsAborted?: number;
}
