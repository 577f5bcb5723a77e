import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { crashPoint } from '../util/crashPoint';
import { fsyncDir, writeFileAtomic } from './atomicFile';
import type { ChunkSink } from './chunkSink';
import type { DiskIndex } from './diskIndex';
import { DiskWriter } from './diskWriter';
import { CHUNK_TMP_DIR, PACK_TMP_DIR, indexFileName, isSafeName, LOCKS_DIR, lockPath, MANIFEST_FILE, pointDir, POINTS_DIR, stagingDir, TMP_DIR, vmStagingRoot } from './layout';
import { acquireVmLock, type VmLock } from './locks';
import { isPointId } from './pointId';
import { pathExists } from './points';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestProblems, serializeManifest } from './manifest';
import { parseLockDate } from './retention';
import type { RepoKey } from './repoKey';
import type { Manifest, ManifestDisk, ManifestDiskInput, VmIdentity } from './types';
import type { RepoMirror } from './store/mirror';

/** @internal A remote repository's writer side of a point (FORMAT.md §24). */
export interface PointMirror {
  mirror: RepoMirror;
  /** The packs holding any of these blob ids (32-byte latin1 keys), every known copy. */
  packsOf(ids: ReadonlySet<string>): Set<string>;
}

/** @internal What a PointWriter gets from the repository. */
export interface PointWriterContext {
  sink: ChunkSink;
  /** Seals the manifest's sensitive parts (encrypted repository). */
  manifestKey: RepoKey | null;
  chunkSize: number;
  vm: VmIdentity;
  pointId: string;
  createdAt: Date;
  parentPointId: string | null;
  stagingDir: string;
  /** Where the point becomes visible: `points/<pointId>`. */
  finalDir: string;
  lock: VmLock;
  /** Remote repository: the mirror the commit goes through; null for a local one. */
  mirror: PointMirror | null;
  /** Called once the writer is committed or aborted. */
  onClose: () => void;
}

export interface CommitParams {
  disks: ManifestDiskInput[];
  consistency: 'crash' | 'filesystem';
  vmDefinition: Manifest['vmDefinition'];
  meta?: Record<string, unknown>;
  /** The point's retention lock (FORMAT.md §13), written in the manifest the point appears
   *  with: from its first listing on it cannot be deleted or pruned before this date. A Date
   *  or an ISO 8601 string; null or absent: not locked. */
  lockedUntil?: Date | string | null;
}

/** @internal What beginPoint needs from the repository. */
export interface BeginPointContext {
  root: string;
  /** The sink of the new point's chunks, given its staging directory. */
  sinkFor(stagingDir: string, lockedUntil: Date | null): ChunkSink;
  mirror?: PointMirror | null;
  manifestKey: RepoKey | null;
  chunkSize: number;
  /** The open writers of the repository object (garbage collection asks them what they hold). */
  writers: Set<PointWriter>;
}

/** Takes the VM's lock (REPO_LOCKED), removes what crashed writers of this VM left in staging,
 *  and returns the writer of the new point (FORMAT.md §9). */
export async function beginPoint(
  ctx: BeginPointContext,
  params: { vm: VmIdentity; pointId: string; createdAt: Date; parentPointId: string | null; lockedUntil?: Date | string | null },
): Promise<PointWriter> {
  const { vm, pointId, createdAt, parentPointId } = params;
  const lockedUntil = params.lockedUntil === undefined || params.lockedUntil === null ? null : parseLockDate(params.lockedUntil, `point ${pointId}`);
  if (!vm || !isSafeName(vm.key) || typeof vm.name !== 'string') {
    throw new AppError('INVALID_ARGUMENT', `vm key ${JSON.stringify(vm?.key)} is not a directory-safe name`);
  }
  if (!isPointId(pointId)) throw new AppError('INVALID_ARGUMENT', `point id ${JSON.stringify(pointId)} is not valid (use newPointId)`);
  if (!(createdAt instanceof Date) || Number.isNaN(createdAt.getTime())) throw new AppError('INVALID_ARGUMENT', `point ${pointId}: invalid createdAt`);
  if (parentPointId !== null && !isPointId(parentPointId)) {
    throw new AppError('INVALID_ARGUMENT', `point ${pointId}: invalid parent point id ${JSON.stringify(parentPointId)}`);
  }
  const finalDir = pointDir(ctx.root, pointId);
  if (await pathExists(finalDir)) throw new AppError('INVALID_ARGUMENT', `point ${pointId} already exists`);
  for (const d of [POINTS_DIR, TMP_DIR, LOCKS_DIR]) await fs.mkdir(path.join(ctx.root, d), { recursive: true });

  const lock = await acquireVmLock(lockPath(ctx.root, vm.key), vm.key, pointId);
  try {
    // We hold the VM's lock: whatever is in its staging area belongs to a writer that died.
    await fs.rm(vmStagingRoot(ctx.root, vm.key), { recursive: true, force: true });
    const staging = stagingDir(ctx.root, vm.key, pointId);
    await fs.mkdir(path.join(staging, CHUNK_TMP_DIR), { recursive: true });
    const writer: PointWriter = new PointWriter({
      sink: ctx.sinkFor(staging, lockedUntil),
      manifestKey: ctx.manifestKey,
      chunkSize: ctx.chunkSize,
      vm: { ...vm },
      pointId,
      createdAt,
      parentPointId,
      stagingDir: staging,
      finalDir,
      lock,
      mirror: ctx.mirror ?? null,
      onClose: () => ctx.writers.delete(writer),
    });
    ctx.writers.add(writer);
    return writer;
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw new AppError('REPO_IO_ERROR', `preparing point ${pointId} of vm ${vm.key} failed`, { cause: err });
  }
}

type State = 'open' | 'committing' | 'committed' | 'aborted';

/**
 * One restore point being written. Everything goes into `tmp/<vmKey>/<pointId>/`; commit
 * writes the manifest there last and renames the directory to `points/<pointId>`, so the point
 * appears whole or not at all. The VM's lock is held from beginPoint to commit/abort.
 */
export class PointWriter {
  readonly pointId: string;
  private readonly disks = new Map<string, DiskWriter>();
  private state: State = 'open';
  /** The commit began uploading the point to the store (its disk indexes, then its manifest). */
  private remoteStarted = false;
  private readonly chunkTmpDir: string;

  /** @internal Created by Repository.beginPoint. */
  constructor(private readonly ctx: PointWriterContext) {
    this.pointId = ctx.pointId;
    this.chunkTmpDir = path.join(ctx.stagingDir, CHUNK_TMP_DIR);
  }

  beginDisk(params: { device: string; virtualSize: number; base?: DiskIndex }): DiskWriter {
    this.checkOpen();
    const { device, virtualSize, base } = params;
    if (typeof device !== 'string' || device === '' || device.length > 256) {
      throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: invalid device name ${JSON.stringify(device)}`);
    }
    if (this.disks.has(device)) throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: disk ${device} already begun`);
    if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) {
      throw new AppError('INVALID_ARGUMENT', `disk ${device}: invalid virtual size ${virtualSize}`);
    }
    if (base) {
      if (base.virtualSize !== virtualSize) {
        throw new AppError(
          'INVALID_ARGUMENT',
          `disk ${device}: base index has virtual size ${base.virtualSize}, the disk now has ${virtualSize}`,
        );
      }
      if (base.chunkSize !== this.ctx.chunkSize) {
        throw new AppError('INVALID_ARGUMENT', `disk ${device}: base index chunk size ${base.chunkSize} differs from the repository's ${this.ctx.chunkSize}`);
      }
    }
    const indexFile = indexFileName(device);
    for (const d of this.disks.values()) {
      if (d.indexFile === indexFile) throw new AppError('INVALID_ARGUMENT', `disk ${device}: index file name clashes with disk ${d.device}`);
    }
    const writer = new DiskWriter(
      {
        sink: this.ctx.sink,
        stagingDir: this.ctx.stagingDir,
        chunkSize: this.ctx.chunkSize,
        closedReason: () => this.closedReason(),
      },
      { device, virtualSize, indexFile, ...(base ? { base } : {}) },
    );
    this.disks.set(device, writer);
    return writer;
  }

  /** Writes the manifest and makes the point visible; releases the lock. */
  async commit(params: CommitParams): Promise<Manifest> {
    this.checkOpen();
    const manifest = this.buildManifest(params);
    this.state = 'committing';
    try {
      // Chunks (files and directory entries) → indexes → manifest, each durable before the next.
      await this.ctx.sink.flush();
      await fs.rm(this.chunkTmpDir, { recursive: true, force: true });
      await fs.rm(path.join(this.ctx.stagingDir, PACK_TMP_DIR), { recursive: true, force: true });
      await writeFileAtomic(path.join(this.ctx.stagingDir, MANIFEST_FILE), serializeManifest(manifest, this.ctx.manifestKey));
      await crashPoint('manifest-written');
      // remote (FORMAT.md §24): the point's files, then its manifest, in the store before it
      // appears here; a crash after the remote manifest is repaired by the next open's sync
      const pm = this.ctx.mirror;
      if (pm) {
        const lockedUntil = manifest.lockedUntil === null ? null : new Date(manifest.lockedUntil);
        this.remoteStarted = true;
        await pm.mirror.commitPoint({ pointId: this.pointId, dir: this.ctx.stagingDir, lockedUntil, packs: () => Promise.resolve(pm.packsOf(this.referencedIds())) });
      }
      await fs.rename(this.ctx.stagingDir, this.ctx.finalDir);
    } catch (err) {
      // a remote point whose manifest reached the store is committed, whatever failed after it
      // (a lost reply, the local rename): the cache must hold it too, or a collection here would
      // delete packs a visible point needs (FORMAT.md §24)
      if (!(await this.finishCommittedRemote())) {
        this.state = 'open';
        throw new AppError('REPO_IO_ERROR', `committing point ${this.pointId} failed`, { cause: err });
      }
    }
    this.state = 'committed';
    try {
      await fsyncDir(path.dirname(this.ctx.finalDir));
    } finally {
      await this.close();
    }
    return manifest;
  }

  /** Removes the staging directory and releases the lock; a no-op once committed or aborted. */
  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    // Workers may still be writing chunk temp files into the staging directory.
    await Promise.all([...this.disks.values()].map((d) => d.settled()));
    try {
      await this.ctx.sink.abort();
      // what of a failed commit reached the store (its disk indexes) goes too; its manifest is
      // not there (commit checked), so no reader saw it. A refusal (Object Lock) leaves
      // unreferenced files that no sync copies; they do not fail the abort.
      if (this.remoteStarted && this.ctx.mirror) await this.ctx.mirror.mirror.deletePoint(this.pointId).catch(() => undefined);
      await fs.rm(this.ctx.stagingDir, { recursive: true, force: true });
    } finally {
      await this.close();
    }
  }

  /** After a failed remote commit: if the store has the manifest, the local rename is done
   *  (again) and true returned; false when the point is not in the store (or the store cannot
   *  say: the caller fails and abort removes what reached it). */
  private async finishCommittedRemote(): Promise<boolean> {
    const pm = this.ctx.mirror;
    if (!pm || !this.remoteStarted) return false;
    const there = await pm.mirror.pointInStore(this.pointId).catch(() => false);
    if (!there) return false;
    const done = await fs.stat(path.join(this.ctx.finalDir, MANIFEST_FILE)).then(() => true, () => false);
    if (!done) {
      await fs.rename(this.ctx.stagingDir, this.ctx.finalDir).catch((err: unknown) => {
        this.state = 'open';
        this.remoteStarted = false; // committed in the store: abort must not delete it
        throw new AppError('REPO_IO_ERROR', `point ${this.pointId} is committed in the store but could not be moved into points/ of the cache; the next open's sync brings it in`, { cause: err });
      });
    }
    return true;
  }

  /** @internal For garbage collection: every chunk digest this point refers to so far. */
  collectDigests(add: (key: string) => void): void {
    if (this.state === 'committed' || this.state === 'aborted') return;
    for (const d of this.disks.values()) d.collectDigests(add);
  }

  /** Every blob id the point refers to: chunks and index tree nodes. */
  private referencedIds(): Set<string> {
    const ids = new Set<string>();
    const add = (k: string): void => void ids.add(k);
    for (const d of this.disks.values()) {
      d.collectDigests(add);
      d.collectNodeIds(add);
    }
    return ids;
  }

  private async close(): Promise<void> {
    try {
      await this.ctx.lock.release();
    } finally {
      this.ctx.onClose();
    }
  }

  private closedReason(): string | undefined {
    if (this.state === 'committed') return `point ${this.pointId} is already committed`;
    if (this.state === 'aborted') return `point ${this.pointId} was aborted`;
    return undefined;
  }

  private checkOpen(): void {
    if (this.state === 'committing') throw new AppError('INVALID_ARGUMENT', `point ${this.pointId} is being committed`);
    const reason = this.closedReason();
    if (reason) throw new AppError('INVALID_ARGUMENT', reason);
  }

  private buildManifest(params: CommitParams): Manifest {
    const inputs = params.disks;
    if (!Array.isArray(inputs) || inputs.length === 0) {
      throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: a point needs at least one disk`);
    }
    const given = new Set(inputs.map((d) => d.device));
    if (given.size !== inputs.length) throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: a disk is listed twice`);
    for (const device of this.disks.keys()) {
      if (!given.has(device)) throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: begun disk ${device} is missing from commit`);
    }
    const disks: ManifestDisk[] = inputs.map((input) => {
      const w = this.disks.get(input.device);
      if (!w) throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: disk ${input.device} was never begun`);
      const index = w.indexInfo;
      if (!index) throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: disk ${input.device} is not finished`);
      const { chunksNew, chunksReused, chunksZero, bytesStored } = w.stats;
      return { ...input, virtualSize: w.virtualSize, chunksNew, chunksReused, chunksZero, bytesStored, index: { ...index } };
    });
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      pointId: this.pointId,
      vm: { ...this.ctx.vm },
      createdAt: this.ctx.createdAt.toISOString(),
      completedAt: new Date().toISOString(),
      parentPointId: this.ctx.parentPointId,
      consistency: params.consistency,
      chunkSize: this.ctx.chunkSize,
      disks,
      vmDefinition: params.vmDefinition,
      lockedUntil: params.lockedUntil === undefined || params.lockedUntil === null ? null : parseLockDate(params.lockedUntil, `point ${this.pointId}`).toISOString(),
      meta: params.meta ?? {},
    };
    const problems = manifestProblems(JSON.parse(JSON.stringify(manifest)) as unknown);
    if (problems.length > 0) {
      throw new AppError('INVALID_ARGUMENT', `point ${this.pointId}: invalid manifest: ${problems.join('; ')}`, { details: { problems } });
    }
    return manifest;
  }
}
