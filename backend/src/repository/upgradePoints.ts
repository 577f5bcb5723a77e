/**
 * Step 2 of the in-place upgrade (FORMAT.md §22): every point, in points/ and in trash/, gets a
 * format-2 index (a tree of nodes in packs and a root file) for each format-1 index, under the
 * same file name, so that upgraded points look like points written in format 2. Per disk, with
 * `F` the index's name, the manifest always names a file whose SHA-256 it records:
 *
 *   (a) link F to `F.v1`, then rewrite the manifest to name `F.v1` (same content, same hash);
 *   (b) store the tree's nodes, flush them (sealed, indexed), write the root over F;
 *   (c) rewrite the manifest to name F with the root's hash;
 *   (d) unlink `F.v1`.
 *
 * A crash anywhere leaves a readable state the next run goes on from: a manifest naming `F.v1`
 * resumes at (b); one naming F whose content is a root is done (a leftover `F.v1` goes). Other
 * fields of the manifest are kept as they are.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { isAppError } from '../errors';
import { crashPoint } from '../util/crashPoint';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import type { BlobCodec } from './blobCodec';
import { sha256Hex } from './digest';
import { DiskIndex } from './diskIndex';
import { MANIFEST_FILE, POINTS_DIR, TRASH_DIR } from './layout';
import { readManifestFile, serializeManifest } from './manifest';
import { BlobType } from './pack';
import { listPointIds } from './points';
import { buildTree, encodeRoot, ROOT_MAGIC } from './treeIndex';
import type { Manifest } from './types';
import type { UpgradePacker } from './upgradePacker';

/** Suffix of a format-1 index kept aside while its point is converted. */
export const V1_ASIDE_SUFFIX = '.v1';
/** Points whose trees are built before one flush of the packer (fewer, fuller packs). */
const BATCH_POINTS = 16;

export interface PointProblem {
  pointId: string;
  where: 'points' | 'trash';
  vmKey: string | null;
  /** null: the point as a whole (its manifest). */
  device: string | null;
  kind: 'manifest-corrupt' | 'index-missing' | 'index-corrupt' | 'chunks-missing';
  message: string;
}

export interface PointsResult {
  /** Points found (with a manifest, readable or not). */
  seen: number;
  /** Points with at least one disk converted by this run (or, dry run, to convert). */
  converted: number;
  /** Points converted whole by an earlier run. */
  alreadyConverted: number;
  /** Points with a disk (or a manifest) that cannot be converted: left as they are. */
  damaged: number;
  problems: PointProblem[];
}

export interface ConvertContext {
  root: string;
  packer: UpgradePacker;
  codec: BlobCodec;
  fanout: number;
  onPoint?: () => void;
}

interface PointDir {
  pointId: string;
  where: 'points' | 'trash';
  dir: string;
}

/** A disk to convert: its v1 index (checked), the final name, the aside name. */
interface DiskJob {
  n: number;
  file: string;
  aside: string;
  /** Dropped once the root is built (a batch holds roots, not whole chunk lists). */
  v1?: DiskIndex;
  root?: Buffer;
}

interface PointJob {
  p: PointDir;
  manifest: Manifest;
  disks: DiskJob[];
}

/** The directories of every point in points/ and trash/. */
export async function pointDirs(root: string): Promise<PointDir[]> {
  const out: PointDir[] = [];
  for (const where of ['points', 'trash'] as const) {
    const base = path.join(root, where === 'points' ? POINTS_DIR : TRASH_DIR);
    for (const pointId of await listPointIds(base)) out.push({ pointId, where, dir: path.join(base, pointId) });
  }
  return out;
}

/** Converts every point still (partly) in format 1; with `dryRun`, only says what it would do. */
export async function convertPoints(ctx: ConvertContext, opts: { dryRun?: boolean } = {}): Promise<PointsResult> {
  const write = opts.dryRun !== true;
  const out: PointsResult = { seen: 0, converted: 0, alreadyConverted: 0, damaged: 0, problems: [] };
  const all = await pointDirs(ctx.root);
  for (let b = 0; b < all.length; b += BATCH_POINTS) {
    const jobs: PointJob[] = [];
    for (const p of all.slice(b, b + BATCH_POINTS)) {
      const before = out.problems.length;
      const job = await prepare(p, out, write);
      if (job === null) continue;
      out.seen++;
      if (out.problems.length > before) out.damaged++;
      if (job === 'done') {
        if (out.problems.length === before) out.alreadyConverted++;
        ctx.onPoint?.();
        continue;
      }
      if (!write) {
        out.converted++;
        continue;
      }
      for (const d of job.disks) {
        d.root = await buildRoot(ctx, job, d, out.problems);
        delete d.v1;
      }
      jobs.push(job);
    }
    if (!write) continue;
    // every node durable and indexed before a root names it
    await ctx.packer.flush();
    for (const job of jobs) {
      await commit(job);
      out.converted++;
      ctx.onPoint?.();
    }
  }
  return out;
}

/**
 * Reads the manifest and classifies each disk; does step (a) for disks still in format 1. Null
 * for a directory without a manifest (not a point); 'done' when nothing is left to do.
 */
async function prepare(p: PointDir, out: PointsResult, write: boolean): Promise<PointJob | 'done' | null> {
  let manifest: Manifest;
  try {
    manifest = await readManifestFile(p.dir, p.pointId);
  } catch (err) {
    if (isAppError(err, 'REPO_POINT_NOT_FOUND')) return null;
    if (!isAppError(err, 'REPO_CORRUPT')) throw err;
    out.problems.push({ pointId: p.pointId, where: p.where, vmKey: null, device: null, kind: 'manifest-corrupt', message: `${err.message}: the point is left as it is` });
    return 'done';
  }
  if (write) await removeTempFiles(p.dir);
  const problem = (device: string, kind: PointProblem['kind'], message: string): void => {
    out.problems.push({ pointId: p.pointId, where: p.where, vmKey: manifest.vm.key, device, kind, message });
  };
  const disks: DiskJob[] = [];
  let moved = false;
  const next: Manifest = { ...manifest, disks: manifest.disks.map((d) => ({ ...d, index: { ...d.index } })) };
  for (const [n, disk] of manifest.disks.entries()) {
    const named = disk.index.file;
    const aside = named.endsWith(V1_ASIDE_SUFFIX) ? named : named + V1_ASIDE_SUFFIX;
    const file = named.endsWith(V1_ASIDE_SUFFIX) ? named.slice(0, -V1_ASIDE_SUFFIX.length) : named;
    const what = `index of disk ${disk.device} in point ${p.pointId}`;
    let buf: Buffer;
    try {
      buf = await fs.readFile(path.join(p.dir, named));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      problem(disk.device, 'index-missing', `${what} is missing: the disk is left as it is`);
      continue;
    }
    if (sha256Hex(buf) !== disk.index.sha256) {
      problem(disk.device, 'index-corrupt', `${what} does not match its manifest: the disk is left as it is`);
      continue;
    }
    if (buf.subarray(0, ROOT_MAGIC.length).equals(ROOT_MAGIC)) {
      if (write) await fs.rm(path.join(p.dir, aside), { force: true }); // step (d) of an earlier run
      continue;
    }
    let v1: DiskIndex;
    try {
      v1 = DiskIndex.parse(buf, what);
      if (v1.chunkSize !== manifest.chunkSize || v1.virtualSize !== disk.virtualSize) throw new Error(`${what} does not match its manifest entry`);
    } catch (err) {
      problem(disk.device, 'index-corrupt', `${(err as Error).message}: the disk is left as it is`);
      continue;
    }
    if (named === file && write) {
      // (a): the v1 content under a second name, which the manifest names while F is rewritten
      await fs.rm(path.join(p.dir, aside), { force: true });
      await fs.link(path.join(p.dir, file), path.join(p.dir, aside));
      (next.disks[n] as Manifest['disks'][number]).index.file = aside;
      moved = true;
    }
    disks.push({ n, file, aside, v1 });
  }
  if (disks.length === 0) return 'done';
  if (moved) {
    await fsyncDir(p.dir);
    await writeFileAtomic(path.join(p.dir, MANIFEST_FILE), serializeManifest(next));
    await crashPoint('upgrade-index-aside');
  }
  return { p, manifest: next, disks };
}

/** (b), first half: the tree's nodes go to the packer; returns the root file's content. */
async function buildRoot(ctx: ConvertContext, job: PointJob, d: DiskJob, problems: PointProblem[]): Promise<Buffer> {
  const v1 = d.v1 as DiskIndex;
  const digests = v1.copyDigests();
  const device = (job.manifest.disks[d.n] as Manifest['disks'][number]).device;
  const missing = missingChunks(ctx.packer, v1);
  if (missing.count > 0) {
    problems.push({
      pointId: job.p.pointId,
      where: job.p.where,
      vmKey: job.manifest.vm.key,
      device,
      kind: 'chunks-missing',
      message: `${missing.count} chunk(s) of disk ${device} are in no pack (missing or corrupt in the format-1 repository), the first at offset ${missing.firstOffset}`,
    });
  }
  const built = await buildTree(digests, ctx.fanout, {
    putNode: async (content) => {
      const id = ctx.codec.id(content);
      if (!ctx.packer.has(id)) await ctx.packer.add(id, BlobType.TreeNode, ctx.codec.encodeWhole(id, content), content.length);
      return id;
    },
  });
  return encodeRoot({ chunkSize: v1.chunkSize, virtualSize: v1.virtualSize, count: v1.count, fanout: ctx.fanout, top: built.top });
}

/** (b) second half, (c), (d): once the nodes are durable. */
async function commit(job: PointJob): Promise<void> {
  const dir = job.p.dir;
  const next: Manifest = { ...job.manifest, disks: job.manifest.disks.map((d) => ({ ...d, index: { ...d.index } })) };
  for (const d of job.disks) {
    const root = d.root as Buffer;
    await writeFileAtomic(path.join(dir, d.file), root);
    const disk = next.disks[d.n] as Manifest['disks'][number];
    disk.index.file = d.file;
    disk.index.sha256 = sha256Hex(root);
  }
  await crashPoint('upgrade-root-written');
  await writeFileAtomic(path.join(dir, MANIFEST_FILE), serializeManifest(next));
  await crashPoint('upgrade-manifest-converted');
  for (const d of job.disks) await fs.rm(path.join(dir, d.aside), { force: true });
  await fsyncDir(dir);
}

/** Distinct non-zero chunks of the index that no pack holds. */
function missingChunks(packer: UpgradePacker, index: DiskIndex): { count: number; firstOffset: number } {
  const seen = new Set<string>();
  let firstOffset = -1;
  for (let i = 0; i < index.count; i++) {
    if (index.isZero(i)) continue;
    const id = index.digest(i);
    if (packer.has(id)) continue;
    if (firstOffset < 0) firstOffset = i * index.chunkSize;
    seen.add(id.toString('latin1'));
  }
  return { count: seen.size, firstOffset };
}

/** Temporary files of atomic writes a crash cut short (names starting with a dot). */
async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) if (name.startsWith('.') && name.includes('.tmp-')) await fs.rm(path.join(dir, name), { force: true });
}
