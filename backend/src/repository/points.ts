/**
 * Reading complete points from disk (FORMAT.md §6, §7, §5): which points exist, their
 * manifests, their indexes checked against the manifest, their chunks checked against their
 * digests. No leases here: PointReader (pointReader.ts) adds them for readers that must not lose
 * a point under them; listings and a writer's parent index (under its VM lock) read directly.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import type { ChunkReader } from './chunkReader';
import { digestToHex, sha256Hex, ZERO_DIGEST_HEX } from './digest';
import type { DiskIndex } from './diskIndex';
import { pointDir, POINTS_DIR, trashDir } from './layout';
import { readManifestFile } from './manifest';
import { isPointId } from './pointId';
import type { RepoKey } from './repoKey';
import type { Manifest } from './types';

/** Manifests read at once by listManifests. */
const LIST_CONCURRENCY = 32;

/** Names under points/ that look like point ids (complete or not), sorted. */
export async function pointIds(root: string): Promise<string[]> {
  return listPointIds(path.join(root, POINTS_DIR));
}

/** The names in `dir` that are point ids, sorted (points/, trash/, a VM's staging directory):
 *  none when `dir` is not there. Anything else in it (temp files, strays) is not listed. */
export async function listPointIds(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter(isPointId).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw new AppError('REPO_IO_ERROR', `listing the points in ${dir} failed`, { cause: err });
  }
}

/** REPO_POINT_NOT_FOUND for an id that is not one or a point without manifest; REPO_CORRUPT. */
export async function readManifest(root: string, pointId: string, key: RepoKey | null = null): Promise<Manifest> {
  if (!isPointId(pointId)) throw new AppError('REPO_POINT_NOT_FOUND', `restore point ${String(pointId)} not found (not a point id)`);
  return readManifestFile(pointDir(root, pointId), pointId, key);
}

/** Manifests of the complete points (optionally one VM's), oldest first. Incomplete and damaged
 *  points are not listed (verify reports the damaged ones). */
export async function listManifests(root: string, vmKey?: string, key: RepoKey | null = null): Promise<Manifest[]> {
  const ids = await pointIds(root);
  const out: Manifest[] = [];
  for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
    const batch = await Promise.all(
      ids.slice(i, i + LIST_CONCURRENCY).map((id) =>
        readManifest(root, id, key).catch((err: unknown) => {
          if (isAppError(err, 'REPO_POINT_NOT_FOUND') || isAppError(err, 'REPO_CORRUPT')) return undefined;
          throw err;
        }),
      ),
    );
    for (const m of batch) if (m && (vmKey === undefined || m.vm.key === vmKey)) out.push(m);
  }
  return out.sort((a, b) => compareStr(a.createdAt, b.createdAt) || compareStr(a.pointId, b.pointId));
}

/**
 * The index of one disk of a read manifest, checked against the manifest's SHA-256 and sizes.
 * With `trashToo`, a point that was deleted after its manifest was read (FORMAT.md §15: only
 * while a lease held from before the deletion keeps it there) is read from trash/.
 */
export async function readPointIndex(
  root: string,
  reader: ChunkReader,
  manifest: Manifest,
  device: string,
  opts: { trashToo?: boolean } = {},
): Promise<DiskIndex> {
  const pointId = manifest.pointId;
  const disk = manifest.disks.find((d) => d.device === device);
  if (!disk) throw new AppError('REPO_DISK_NOT_FOUND', `point ${pointId} has no disk ${device}`);
  const what = `index of disk ${device} in point ${pointId}`;
  const dirs = [pointDir(root, pointId), ...(opts.trashToo ? [trashDir(root, pointId)] : [])];
  let buf: Buffer | undefined;
  let missing: unknown;
  for (const dir of dirs) {
    try {
      buf = await fs.readFile(path.join(dir, disk.index.file));
      break;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw new AppError('REPO_IO_ERROR', `reading ${what} failed`, { cause: err });
      missing = err;
    }
  }
  if (!buf) throw new AppError('REPO_CORRUPT', `${what} is missing`, { cause: missing, details: { kind: 'index-missing' } });
  const actual = sha256Hex(buf);
  if (actual !== disk.index.sha256) {
    throw new AppError('REPO_CORRUPT', `${what} is damaged (sha256 ${actual}, manifest says ${disk.index.sha256})`, {
      details: { kind: 'index-corrupt' },
    });
  }
  const index = await reader.decodeIndex(buf, what);
  if (index.virtualSize !== disk.virtualSize || index.chunkSize !== manifest.chunkSize || index.count !== disk.index.chunkCount) {
    throw new AppError('REPO_CORRUPT', `${what} does not match its manifest entry`, { details: { kind: 'index-corrupt' } });
  }
  return index;
}

/** Plain content of a chunk. The zero digest gives zeros without I/O; otherwise the chunk is
 *  decompressed and re-hashed, REPO_CORRUPT naming it if it is missing or damaged. */
export async function readChunk(store: ChunkReader, chunkSize: number, digest: Buffer | string, expectedLength: number): Promise<Buffer> {
  const hex = digestToHex(digest);
  if (!Number.isInteger(expectedLength) || expectedLength < 0 || expectedLength > chunkSize) {
    throw new AppError('INVALID_ARGUMENT', `chunk length ${expectedLength} is outside 0..${chunkSize}`);
  }
  if (hex === ZERO_DIGEST_HEX) return Buffer.alloc(expectedLength);
  return store.read(hex, expectedLength);
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

function compareStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
