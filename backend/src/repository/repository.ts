import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import { ChunkStore } from './chunkStore';
import { newConfig, readConfig, writeConfig, type RepoConfig } from './config';
import { digestToHex, sha256Hex, ZERO_DIGEST_HEX } from './digest';
import { DiskIndex } from './diskIndex';
import {
  AUDIT_FILE,
  CHUNK_TMP_DIR,
  CHUNKS_DIR,
  CONFIG_FILE,
  isSafeName,
  LAYOUT_DIRS,
  LOCKS_DIR,
  lockPath,
  pointDir,
  POINTS_DIR,
  stagingDir,
  TMP_DIR,
  vmStagingRoot,
} from './layout';
import { acquireVmLock, breakVmLock, readLock, type LockInfo } from './locks';
import { appendAudit, processActor, readAudit, type AuditInput, type AuditRecord } from './audit';
import { clearDamageMark, MAX_MARK_PROBLEMS, quarantineChunk, readDamageMark, readDamageMarks, writeDamageMark } from './damage';
import { collectGarbage, type GcOptions } from './gc';
import type { GfsRules } from './gfs';
import { readManifestFile, summarize } from './manifest';
import { isPointId } from './pointId';
import { PointWriter } from './pointWriter';
import * as retention from './retention';
import type {
  DamageMark,
  DeleteResult,
  GcReport,
  Manifest,
  PointSummary,
  PruneReport,
  VerifyReport,
  VmIdentity,
} from './types';
import { verifyRepository, type VerifyOptions } from './verify';

/** Manifests read at once by listPoints. */
const LIST_CONCURRENCY = 32;

/**
 * A chunk repository in a local directory (format: FORMAT.md beside this file). Safe for any
 * number of readers and for concurrent writers of different VMs, in this process or others;
 * writers of the same VM exclude each other through the VM lock.
 */
export class Repository {
  readonly dir: string;
  readonly chunkSize: number;
  readonly config: Readonly<RepoConfig>;
  private readonly store: ChunkStore;
  private readonly writers = new Set<PointWriter>();

  private constructor(dir: string, config: RepoConfig, opts: { workers?: number }) {
    this.dir = dir;
    this.config = config;
    this.chunkSize = config.chunkSize;
    this.store = new ChunkStore(path.join(dir, CHUNKS_DIR), config.zstdLevel, opts.workers);
  }

  /** Creates a repository in `dir` (created if needed, must be empty). REPO_EXISTS if it is
   *  already a repository or holds anything else; INVALID_ARGUMENT for a bad chunk size. */
  static async init(dir: string, opts: { chunkSize?: number; workers?: number } = {}): Promise<Repository> {
    const root = path.resolve(dir);
    const config = newConfig(opts.chunkSize);
    await fs.mkdir(root, { recursive: true }).catch((err: unknown) => {
      if (isErrno(err, 'EEXIST', 'ENOTDIR')) throw new AppError('REPO_EXISTS', `${root} exists and is not a directory`, { cause: err });
      throw new AppError('REPO_IO_ERROR', `creating ${root} failed`, { cause: err });
    });
    const entries = await fs.readdir(root);
    if (entries.includes(CONFIG_FILE)) throw new AppError('REPO_EXISTS', `${root} is already a repository`);
    // Left-overs of an init that crashed before writing the config are fine; anything else is not ours.
    for (const e of entries) {
      const ours = (LAYOUT_DIRS as readonly string[]).includes(e) && (await fs.readdir(path.join(root, e)).catch(() => ['x'])).length === 0;
      if (!ours) throw new AppError('REPO_EXISTS', `${root} is not empty and not a repository (found ${e})`);
    }
    for (const d of LAYOUT_DIRS) await fs.mkdir(path.join(root, d), { recursive: true });
    // The config last: its presence is what makes the directory a repository.
    await writeConfig(root, config);
    return new Repository(root, config, opts);
  }

  /** REPO_NOT_FOUND without directory or config; REPO_INVALID for a config this code cannot use. */
  static async open(dir: string, opts: { workers?: number } = {}): Promise<Repository> {
    const root = path.resolve(dir);
    const config = await readConfig(root);
    return new Repository(root, config, opts);
  }

  /** Complete points only (those with a readable manifest), oldest first. */
  async listPoints(filter: { vmKey?: string } = {}): Promise<PointSummary[]> {
    return (await this.listManifests(filter.vmKey)).map(summarize);
  }

  /** Manifests of the complete points (optionally one VM's), oldest first. */
  private async listManifests(vmKey?: string): Promise<Manifest[]> {
    const ids = await this.pointDirs();
    const out: Manifest[] = [];
    for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(
        ids.slice(i, i + LIST_CONCURRENCY).map((id) =>
          this.readManifest(id).catch((err: unknown) => {
            // Incomplete or damaged points are not listed (verify reports the damaged ones).
            if (isAppError(err, 'REPO_POINT_NOT_FOUND') || isAppError(err, 'REPO_CORRUPT')) return undefined;
            throw err;
          }),
        ),
      );
      for (const m of batch) if (m && (vmKey === undefined || m.vm.key === vmKey)) out.push(m);
    }
    return out.sort((a, b) => compareStr(a.createdAt, b.createdAt) || compareStr(a.pointId, b.pointId));
  }

  async readManifest(pointId: string): Promise<Manifest> {
    if (!isPointId(pointId)) throw new AppError('REPO_POINT_NOT_FOUND', `restore point ${String(pointId)} not found (not a point id)`);
    return readManifestFile(pointDir(this.dir, pointId), pointId);
  }

  async latestPoint(vmKey: string): Promise<Manifest | undefined> {
    const points = await this.listPoints({ vmKey });
    const last = points[points.length - 1];
    return last ? this.readManifest(last.pointId) : undefined;
  }

  async readIndex(pointId: string, device: string): Promise<DiskIndex> {
    return this.indexOf(await this.readManifest(pointId), device);
  }

  /** Plain content of a chunk. The zero digest gives zeros without I/O; otherwise the chunk
   *  is decompressed and re-hashed, REPO_CORRUPT naming it if it is missing or damaged. */
  async readChunk(digest: Buffer | string, expectedLength: number): Promise<Buffer> {
    const hex = digestToHex(digest);
    if (!Number.isInteger(expectedLength) || expectedLength < 0 || expectedLength > this.chunkSize) {
      throw new AppError('INVALID_ARGUMENT', `chunk length ${expectedLength} is outside 0..${this.chunkSize}`);
    }
    if (hex === ZERO_DIGEST_HEX) return Buffer.alloc(expectedLength);
    return this.store.read(hex, expectedLength);
  }

  /** Takes the VM's lock (REPO_LOCKED), removes what crashed writers of this VM left in
   *  staging, and returns the writer of the new point. */
  async beginPoint(params: { vm: VmIdentity; pointId: string; createdAt: Date; parentPointId: string | null }): Promise<PointWriter> {
    const { vm, pointId, createdAt, parentPointId } = params;
    if (!vm || !isSafeName(vm.key) || typeof vm.name !== 'string') {
      throw new AppError('INVALID_ARGUMENT', `vm key ${JSON.stringify(vm?.key)} is not a directory-safe name`);
    }
    if (!isPointId(pointId)) throw new AppError('INVALID_ARGUMENT', `point id ${JSON.stringify(pointId)} is not valid (use newPointId)`);
    if (!(createdAt instanceof Date) || Number.isNaN(createdAt.getTime())) throw new AppError('INVALID_ARGUMENT', `point ${pointId}: invalid createdAt`);
    if (parentPointId !== null && !isPointId(parentPointId)) {
      throw new AppError('INVALID_ARGUMENT', `point ${pointId}: invalid parent point id ${JSON.stringify(parentPointId)}`);
    }
    const finalDir = pointDir(this.dir, pointId);
    if (await pathExists(finalDir)) throw new AppError('INVALID_ARGUMENT', `point ${pointId} already exists`);
    for (const d of [POINTS_DIR, TMP_DIR, LOCKS_DIR]) await fs.mkdir(path.join(this.dir, d), { recursive: true });

    const lock = await acquireVmLock(lockPath(this.dir, vm.key), vm.key, pointId);
    try {
      const vmTmp = vmStagingRoot(this.dir, vm.key);
      // We hold the VM's lock: whatever is in its staging area belongs to a writer that died.
      await fs.rm(vmTmp, { recursive: true, force: true });
      const staging = stagingDir(this.dir, vm.key, pointId);
      await fs.mkdir(path.join(staging, CHUNK_TMP_DIR), { recursive: true });
      let writer: PointWriter | undefined = undefined;
      writer = new PointWriter({
        store: this.store,
        chunkSize: this.chunkSize,
        vm: { ...vm },
        pointId,
        createdAt,
        parentPointId,
        stagingDir: staging,
        finalDir,
        lock,
        onClose: () => {
          if (writer) this.writers.delete(writer);
        },
      });
      this.writers.add(writer);
      return writer;
    } catch (err) {
      await lock.release().catch(() => undefined);
      throw new AppError('REPO_IO_ERROR', `preparing point ${pointId} of vm ${vm.key} failed`, { cause: err });
    }
  }

  /**
   * Re-hashes every chunk of every point (or of `opts.pointId`, or of `opts.vmKey`'s points) and
   * reports per point. With
   * `repair` (default true): corrupt chunk files go to quarantine/ (so the next backup reading
   * that content stores it again), damaged points get a mark (damaged/<id>.json, see
   * damagedPoints), and points found whole again lose theirs; each change is audited.
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    const report = await verifyRepository(
      {
        pointDirs: opts.vmKey !== undefined && opts.pointId === undefined ? async () => (await this.listPoints({ vmKey: opts.vmKey })).map((p) => p.pointId) : () => this.pointDirs(),
        pointPath: (id) => pointDir(this.dir, id),
        readManifest: (id) => this.readManifest(id),
        readIndex: (m, device) => this.indexOf(m, device),
        checkChunk: (hex, length) => this.store.check(hex, length),
        parallelism: this.store.parallelism,
      },
      opts,
    );
    if (opts.repair === false) return report;
    return this.applyVerifyRepairs(report, opts.actor ?? processActor('verify'));
  }

  private async applyVerifyRepairs(report: VerifyReport, actor: string): Promise<VerifyReport> {
    const audit: AuditInput[] = [];
    const quarantined: string[] = [];
    const corrupt = new Set(report.problems.filter((p) => p.kind === 'chunk-corrupt' && p.chunk !== null).map((p) => p.chunk as string));
    for (const hex of [...corrupt].sort()) {
      const name = await quarantineChunk(this.dir, hex);
      if (name === null) continue;
      quarantined.push(hex);
      audit.push({ actor, action: 'chunk-quarantine', reason: 'verify: chunk content does not match its digest', details: { chunk: hex, file: name } });
    }
    const marked: string[] = [];
    const cleared: string[] = [];
    const now = new Date().toISOString();
    for (const r of report.points) {
      if (r.status === 'ok') {
        if (await clearDamageMark(this.dir, r.pointId)) {
          cleared.push(r.pointId);
          audit.push({ actor, action: 'damage-clear', pointId: r.pointId, vmKey: r.vmKey, reason: 'verify: every chunk is present and intact again' });
        }
        continue;
      }
      if (!(await pathExists(pointDir(this.dir, r.pointId)))) continue; // deleted while verify ran
      const prev = await readDamageMark(this.dir, r.pointId);
      const problems = report.problems.filter((p) => p.pointId === r.pointId);
      const mark: DamageMark = {
        pointId: r.pointId,
        vmKey: r.vmKey,
        markedAt: prev?.markedAt || now,
        verifiedAt: now,
        devices: r.damagedDevices,
        problems: problems.slice(0, MAX_MARK_PROBLEMS).map((p) => ({ device: p.device, chunk: p.chunk, offset: p.offset, kind: p.kind })),
      };
      await writeDamageMark(this.dir, mark);
      if (!prev) {
        marked.push(r.pointId);
        audit.push({
          actor,
          action: 'damage-mark',
          pointId: r.pointId,
          vmKey: r.vmKey,
          reason: `verify: ${problems.length} problem(s)`,
          details: { devices: mark.devices, kinds: [...new Set(problems.map((p) => p.kind))] },
        });
      }
    }
    await appendAudit(this.dir, audit);
    return { ...report, quarantined, marked, cleared };
  }

  /** Points verify marked damaged (and that still exist), in id order. */
  async damagedPoints(): Promise<DamageMark[]> {
    const marks = await readDamageMarks(this.dir);
    const out: DamageMark[] = [];
    for (const m of marks) if (await pathExists(pointDir(this.dir, m.pointId))) out.push(m);
    return out;
  }

  /** The point's damage mark, or null if verify has not found it damaged. A backup whose
   *  parent point is marked copies the damaged disks whole (FullReason `parent-damaged`). */
  async damageOf(pointId: string): Promise<DamageMark | null> {
    return readDamageMark(this.dir, pointId);
  }

  /**
   * Deletes a restore point, refusing (REPO_POINT_LOCKED, naming the point and the date) while
   * its retention lock runs. The point leaves points/ by one rename, so it vanishes for every
   * reader at once; the deletion is in the audit log before it happens. Its chunks stay until
   * gc(). REPO_POINT_NOT_FOUND for an unknown point.
   */
  async deletePoint(pointId: string, opts: { reason: string; actor: string }): Promise<DeleteResult> {
    return retention.deletePoint(this.retentionContext(), pointId, opts);
  }

  /**
   * Sets the point's retention lock to `until`. A lock can only be lengthened: an earlier date
   * than the current lock is REPO_POINT_LOCKED; a date in the past INVALID_ARGUMENT. Audited.
   */
  async extendLock(pointId: string, until: Date | string, opts: { actor?: string; reason?: string } = {}): Promise<Manifest> {
    return retention.extendLock(this.retentionContext(), pointId, until, { actor: opts.actor ?? processActor(), ...(opts.reason ? { reason: opts.reason } : {}) });
  }

  /**
   * SUPPORT INTERVENTION ONLY. Clears a point's retention lock so that it can be deleted. Meant
   * for the operator's CLI on the backup server itself (`olvm-backup points unlock`), after the
   * audit record naming the operator and the reason is written. The service API, the scheduler
   * and the UI must never call this: "nothing reachable from the API or the portal can delete,
   * prune, unprotect or shorten the lock of a locked point".
   */
  async unlockPoint(pointId: string, opts: { reason: string; operator: string }): Promise<Manifest> {
    return retention.unlockPoint(this.retentionContext(), pointId, opts);
  }

  /**
   * Applies GFS retention (gfs.ts) to each VM's points and deletes those no rule keeps, except
   * points under a retention lock (reported as `locked`). `dryRun` only reports. Chunks are
   * freed by gc() afterwards.
   */
  async prune(rules: GfsRules, opts: retention.PruneOptions = {}): Promise<PruneReport> {
    return retention.prune(this.retentionContext(), rules, opts);
  }

  /** Garbage collection (gc.ts): removes chunks no point references, older than the grace
   *  period and than every running writer. Safe while backups write. */
  async gc(opts: GcOptions = {}): Promise<GcReport> {
    return collectGarbage(
      {
        root: this.dir,
        collectLiveWriters: (add) => {
          for (const w of this.writers) w.collectDigests(add);
        },
      },
      opts,
    );
  }

  /** Where the audit log is: JSON lines, only ever appended to (FORMAT.md §12), also by the
   *  CLI while the service runs. */
  get auditFile(): string {
    return path.join(this.dir, AUDIT_FILE);
  }

  /** The audit log (audit.log), oldest first. */
  async auditLog(opts: { since?: Date } = {}): Promise<AuditRecord[]> {
    return readAudit(this.dir, opts);
  }

  private retentionContext(): retention.RetentionContext {
    return { root: this.dir, readManifest: (id) => this.readManifest(id), listManifests: (vmKey) => this.listManifests(vmKey) };
  }

  /** Who holds the VM's write lock, if anyone. */
  async readLock(vmKey: string): Promise<LockInfo | null> {
    if (!isSafeName(vmKey)) return null;
    const cur = await readLock(lockPath(this.dir, vmKey));
    return cur?.info ?? null;
  }

  /** Operator action (CLI unlock): removes the VM's lock whoever holds it; returns the holder. */
  async breakLock(vmKey: string): Promise<LockInfo | null> {
    if (!isSafeName(vmKey)) throw new AppError('INVALID_ARGUMENT', `vm key ${JSON.stringify(vmKey)} is not valid`);
    return breakVmLock(lockPath(this.dir, vmKey));
  }

  /** Aborts writers still open, then stops the worker pool (restarted if used again). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.writers].map((w) => w.abort()));
    await this.store.close();
  }

  /** @internal Test hook: one chunk worker exits as if it crashed. */
  crashWorkerForTest(): Promise<unknown> {
    return this.store.crashOneWorker();
  }

  /** Names under points/ that look like point ids (complete or not). */
  private async pointDirs(): Promise<string[]> {
    try {
      return (await fs.readdir(path.join(this.dir, POINTS_DIR))).filter(isPointId).sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw new AppError('REPO_IO_ERROR', `listing points in ${this.dir} failed`, { cause: err });
    }
  }

  private async indexOf(manifest: Manifest, device: string): Promise<DiskIndex> {
    const pointId = manifest.pointId;
    const disk = manifest.disks.find((d) => d.device === device);
    if (!disk) throw new AppError('REPO_DISK_NOT_FOUND', `point ${pointId} has no disk ${device}`);
    const what = `index of disk ${device} in point ${pointId}`;
    let buf: Buffer;
    try {
      buf = await fs.readFile(path.join(pointDir(this.dir, pointId), disk.index.file));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new AppError('REPO_CORRUPT', `${what} is missing`, { cause: err, details: { kind: 'index-missing' } });
      throw new AppError('REPO_IO_ERROR', `reading ${what} failed`, { cause: err });
    }
    const actual = sha256Hex(buf);
    if (actual !== disk.index.sha256) {
      throw new AppError('REPO_CORRUPT', `${what} is damaged (sha256 ${actual}, manifest says ${disk.index.sha256})`, {
        details: { kind: 'index-corrupt' },
      });
    }
    const index = DiskIndex.parse(buf, what);
    if (index.virtualSize !== disk.virtualSize || index.chunkSize !== manifest.chunkSize || index.count !== disk.index.chunkCount) {
      throw new AppError('REPO_CORRUPT', `${what} does not match its manifest entry`, { details: { kind: 'index-corrupt' } });
    }
    return index;
  }
}

function compareStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
