import { createHash } from 'crypto';
import * as path from 'path';

/**
 * Where everything lives inside a repository directory. FORMAT.md §1 is the normative copy of
 * these names; change both together.
 */
export const CONFIG_FILE = 'config.json';
export const CHUNKS_DIR = 'chunks';
export const POINTS_DIR = 'points';
export const TMP_DIR = 'tmp';
export const LOCKS_DIR = 'locks';
export const MANIFEST_FILE = 'manifest.json';
/** Inside a staging directory: chunk files being written before they are linked into chunks/. */
export const CHUNK_TMP_DIR = 'chunk-tmp';


// Added in document revision 2 (retention, GC, verify marks). Created when first needed, so
// repositories made before them stay valid; readers that do not know them ignore them.
/** Append-only JSON-lines audit log of deletions, prunes, lock changes, damage marks. */
export const AUDIT_FILE = 'audit.log';
/** Points moved out of points/ by a deletion, kept while a writer may still build on them. */
export const TRASH_DIR = 'trash';
/** Chunk files the running (or a crashed) garbage collection has moved aside. */
export const GC_PENDING_DIR = 'gc-pending';
/** `damaged/<pointId>.json`: points verify found damaged. */
export const DAMAGED_DIR = 'damaged';
/** Chunk files verify found corrupt, moved out of chunks/ so the content can be stored again. */
export const QUARANTINE_DIR = 'quarantine';
// Added in document revision 3 (read leases). Created when first needed, like revision 2's.
/** `leases/<pointId>.<leaseId>.json`: points being read (a restore, a download, a verify). */
export const LEASES_DIR = 'leases';

// Format 2 (FORMAT.md §16): pack files, the repository index, key files.
/** `packs/<ab>/<sha256>`: pack files, named by the SHA-256 of their content. */
export const PACKS_DIR = 'packs';
/** `index/<sha256>`: repository index files (chunk id → pack). */
export const INDEX_DIR = 'index';
/** `keys/<keyId>.json`: the repository key wrapped by a passphrase (encrypted repositories). */
export const KEYS_DIR = 'keys';
/** Inside a staging directory: packs being written before they are renamed into packs/. */
export const PACK_TMP_DIR = 'packs';
/** The garbage collection's own staging area (a name no VM key can take). */
export const GC_STAGING_DIR = '.gc';
/** `tmp/.upgrade/`: packs the in-place upgrade from format 1 is writing (FORMAT.md §22). */
export const UPGRADE_STAGING_DIR = '.upgrade';

/** Made by init; a repository made before a directory was added gets it when first needed. */
export const LAYOUT_DIRS = [CHUNKS_DIR, POINTS_DIR, TMP_DIR, LOCKS_DIR, LEASES_DIR] as const;
export const LAYOUT_DIRS_V2 = [PACKS_DIR, INDEX_DIR, POINTS_DIR, TMP_DIR, LOCKS_DIR, LEASES_DIR] as const;

export function packPath(root: string, name: string): string {
  return path.join(root, PACKS_DIR, name.slice(0, 2), name);
}

export function indexFilePath(root: string, name: string): string {
  return path.join(root, INDEX_DIR, name);
}

/** Repository-wide locks in locks/: point deletions and lock changes; garbage collection. */
export const ADMIN_LOCK_FILE = 'admin.lock';
export const GC_LOCK_FILE = 'gc.lock';

/** VM keys and disk file stems: directory-safe, no leading dot, bounded. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const HEX_DIGEST = /^[0-9a-f]{64}$/;

export function isSafeName(s: unknown): s is string {
  return typeof s === 'string' && SAFE_NAME.test(s);
}

export function isHexDigest(s: unknown): s is string {
  return typeof s === 'string' && HEX_DIGEST.test(s);
}

/** `chunks/ab/cd/abcd…` : two levels of 256 fan-out keep every directory small. */
export function chunkRelPath(hex: string): string {
  return path.join(CHUNKS_DIR, hex.slice(0, 2), hex.slice(2, 4), hex);
}

export function chunkPath(root: string, hex: string): string {
  return path.join(root, chunkRelPath(hex));
}

export function pointDir(root: string, pointId: string): string {
  return path.join(root, POINTS_DIR, pointId);
}

/** Staging area of one VM: `tmp/<vmKey>/`; only the holder of that VM's lock writes there. */
export function vmStagingRoot(root: string, vmKey: string): string {
  return path.join(root, TMP_DIR, vmKey);
}

export function stagingDir(root: string, vmKey: string, pointId: string): string {
  return path.join(vmStagingRoot(root, vmKey), pointId);
}

export function lockPath(root: string, vmKey: string): string {
  return path.join(root, LOCKS_DIR, `vm-${vmKey}.lock`);
}

/** The VM key of a `locks/vm-<vmKey>.lock` file name, or undefined for any other name. */
export function vmKeyOfLockFile(name: string): string | undefined {
  const m = /^vm-(.+)\.lock$/.exec(name);
  return m && isSafeName(m[1]) ? m[1] : undefined;
}

export function leasePath(root: string, pointId: string, leaseId: string): string {
  return path.join(root, LEASES_DIR, `${pointId}.${leaseId}.json`);
}

/** Point id and lease id of a `leases/` file name, or undefined for any other name. */
export function parseLeaseFileName(name: string): { pointId: string; leaseId: string } | undefined {
  const m = /^([0-9]{8}T[0-9]{6}Z-[0-9a-f]{6,32})\.([0-9a-f]{16})\.json$/.exec(name);
  return m ? { pointId: m[1] as string, leaseId: m[2] as string } : undefined;
}

export function trashDir(root: string, pointId: string): string {
  return path.join(root, TRASH_DIR, pointId);
}

export function damagedMarkPath(root: string, pointId: string): string {
  return path.join(root, DAMAGED_DIR, `${pointId}.json`);
}

/** File name of a disk's index inside its point directory. Devices with unusual characters
 *  get a stable hashed name; the manifest records the name either way. */
export function indexFileName(device: string): string {
  if (isSafeName(device)) return `disk-${device}.idx`;
  return `disk-${createHash('sha256').update(device).digest('hex').slice(0, 16)}.idx`;
}
