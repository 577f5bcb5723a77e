/**
 * `olvm-backup repo upgrade`: a format-1 repository converted to format 2 in place (FORMAT.md
 * §22), resumable after a crash at any moment, verified at the end. The order:
 *
 *   0. take the repository alone (upgradeGuard.ts); config.json becomes version 2 with an
 *      `upgrade` marker — a format-1 program refuses version 2, this program refuses the marker
 *      to everyone but this command — and the start is audited;
 *   1. chunk files into packs (upgradeChunks.ts, upgradePacker.ts);
 *   2. point indexes into trees (upgradePoints.ts);
 *   3. steps 1 and 2 once more (they find nothing unless a writer slipped in), one repository
 *      index file for all packs, the staging left-overs go, the end is audited, config.json
 *      loses the marker, chunks/ goes; a full verify reports (and marks) any damage.
 *
 * Every step goes on from what is on disk, so running the command again after a crash finishes
 * the job; a run on a repository that is format 2 already only removes what a crash after the
 * config change left, and verifies.
 */
import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { crashPoint } from '../util/crashPoint';
import { appendAudit, processActor } from './audit';
import { BlobCodec } from './blobCodec';
import { DEFAULT_PACK_SIZE, DEFAULT_TREE_FANOUT, isValidPackSize, MAX_PACK_SIZE, MIN_PACK_SIZE, readConfig, writeConfig, type RepoConfig } from './config';
import { CHUNKS_DIR, GC_LOCK_FILE, GC_PENDING_DIR, INDEX_DIR, LOCKS_DIR, PACK_TMP_DIR, PACKS_DIR, TMP_DIR, UPGRADE_STAGING_DIR } from './layout';
import { isStale, readLock } from './locks';
import { PackStore } from './packStore';
import { pathExists } from './points';
import { RepoIndex } from './repoIndex';
import { Repository } from './repository';
import type { VerifyReport } from './types';
import { chunkFiles, copyChunks, countChunkFiles, type ChunkCopyResult } from './upgradeChunks';
import { blockers, inUseError, takeExclusive } from './upgradeGuard';
import { consolidateIndex, removeOrphanPacks, UpgradePacker } from './upgradePacker';
import { convertPoints, pointDirs, type PointProblem, type PointsResult } from './upgradePoints';

export type { CorruptChunk } from './upgradeChunks';
export type { PointProblem } from './upgradePoints';

export interface UpgradeOptions {
  /** Pack size of the upgraded repository (default 32 MiB); fixed when the upgrade starts. */
  packSize?: number;
  /** Only report what would be done; writes and locks nothing. */
  dryRun?: boolean;
  /** For the audit log (default `upgrade:<user>@<host>`). */
  actor?: string;
  /** Default true: a full verify (with repairs: damage marks) once the upgrade is done. */
  verify?: boolean;
  onProgress?: (p: UpgradeProgress) => void;
  /** Worker threads for checking chunks (default as the repository's). */
  workers?: number;
  /** @internal Sealed packs per repository index file (tests). */
  indexEvery?: number;
}

export interface UpgradeProgress {
  phase: 'chunks' | 'points' | 'verify';
  done: number;
  total: number;
}

export interface UpgradeReport {
  repo: string;
  dryRun: boolean;
  /** What the run found: a format-1 repository, an upgrade a crash interrupted, or format 2. */
  found: 'format-1' | 'upgrading' | 'format-2';
  /** The repository's format when the run ended. */
  version: 1 | 2;
  /** When the upgrade began (this run or the interrupted one); null for format 2 found. */
  startedAt: string | null;
  packSize: number | null;
  /** Chunk files (dry run: `copied`/`bytesCopied` are what would be copied). */
  chunks: ChunkCopyResult;
  /** Points (dry run: `converted` is what would be converted). */
  points: PointsResult;
  /** Packs written by this run. */
  packs: number;
  /** Dry run: what would make the upgrade refuse to start. */
  blockers: string[];
  /** Dry run: free bytes on the repository's file system (the copies need about
   *  `chunks.bytesCopied` until chunks/ goes at the end); null when unknown. */
  freeBytes: number | null;
  /** A crash after the config change had left chunks/: removed now. */
  leftoversRemoved: boolean;
  /** The verify that ended the upgrade; null when none ran. */
  verify: VerifyReport | null;
  seconds: number;
}

export async function upgradeRepository(dir: string, opts: UpgradeOptions = {}): Promise<UpgradeReport> {
  const root = path.resolve(dir);
  const t0 = Date.now();
  const actor = opts.actor ?? processActor('upgrade');
  const config = await readConfig(root, { upgrading: true });
  const found = config.version === 1 ? 'format-1' : config.upgrade ? 'upgrading' : 'format-2';
  const report: UpgradeReport = {
    repo: root,
    dryRun: opts.dryRun === true,
    found,
    version: config.version,
    startedAt: config.upgrade?.startedAt ?? null,
    packSize: config.version === 2 ? (config.packSize ?? null) : null,
    chunks: { seen: 0, copied: 0, bytesCopied: 0, alreadyPacked: 0, corrupt: [] },
    points: { seen: 0, converted: 0, alreadyConverted: 0, damaged: 0, problems: [] },
    packs: 0,
    blockers: [],
    freeBytes: null,
    leftoversRemoved: false,
    verify: null,
    seconds: 0,
  };
  const done = (): UpgradeReport => ({ ...report, seconds: (Date.now() - t0) / 1000 });
  if (found === 'format-2') {
    if (report.dryRun || !(await removeChunks(root))) return done();
    report.leftoversRemoved = true;
  } else if (report.dryRun) {
    await plan(root, config, report);
    return done();
  } else {
    const packSize = config.packSize ?? opts.packSize ?? DEFAULT_PACK_SIZE;
    if (!isValidPackSize(packSize)) throw new AppError('INVALID_ARGUMENT', `pack size ${String(packSize)} is outside ${MIN_PACK_SIZE}..${MAX_PACK_SIZE} bytes`);
    report.packSize = packSize;
    await upgradeLocked(root, config, packSize, actor, opts, report);
    report.version = 2;
  }
  if (opts.verify !== false) report.verify = await verifyUpgraded(root, actor, opts);
  return done();
}

/** Steps 0–3 under the repository's locks. */
async function upgradeLocked(root: string, config: RepoConfig, packSize: number, actor: string, opts: UpgradeOptions, report: UpgradeReport): Promise<void> {
  const guard = await takeExclusive(root);
  let store: PackStore | undefined;
  try {
    let cfg = config;
    if (config.version === 1) {
      cfg = upgradingConfig(config, packSize, actor);
      report.startedAt = cfg.upgrade?.startedAt ?? null;
      await appendAudit(root, [{ actor, action: 'upgrade', reason: 'format 1 to 2: started', details: { packSize } }]);
      await writeConfig(root, cfg);
      // a writer or reader of a process that read the config before the change
      const late = await blockers(root, guard.own);
      if (late.length > 0) {
        await writeConfig(root, config);
        await appendAudit(root, [{ actor, action: 'upgrade', reason: 'format 1 to 2: not started, the repository is in use', details: { blockers: late } }]);
        throw inUseError(root, late);
      }
      await crashPoint('upgrade-marked');
    } else {
      await appendAudit(root, [{ actor, action: 'upgrade', reason: 'format 1 to 2: resumed', details: { startedAt: cfg.upgrade?.startedAt } }]);
    }
    for (const d of [PACKS_DIR, INDEX_DIR]) await fs.mkdir(path.join(root, d), { recursive: true });
    store = new PackStore({ root, zstdLevel: cfg.zstdLevel, packSize, key: null, ...(opts.workers ? { workers: opts.workers } : {}) });
    await store.index.refresh();
    const staging = path.join(root, TMP_DIR, UPGRADE_STAGING_DIR);
    await fs.rm(staging, { recursive: true, force: true });
    await removeOrphanPacks(root, store.index);
    const packer = new UpgradePacker(root, path.join(staging, PACK_TMP_DIR), packSize, store.index, opts.indexEvery);
    try {
      await convertAll(root, cfg, store, packer, guard.own, actor, opts, report);
    } catch (err) {
      await packer.discard().catch(() => undefined);
      throw err;
    }
    report.packs = packer.packs;
    await consolidateIndex(root);
    await removeStaging(root);
    // recorded before it happens (FORMAT.md §12): a crash right after the record leaves a
    // resumable upgrade, which records its end again
    await appendAudit(root, [
      {
        actor,
        action: 'upgrade',
        reason: 'format 1 to 2: finished',
        details: {
          startedAt: cfg.upgrade?.startedAt,
          chunksCopied: report.chunks.copied,
          bytesCopied: report.chunks.bytesCopied,
          packs: report.packs,
          pointsConverted: report.points.converted,
          corruptChunks: report.chunks.corrupt.slice(0, 100).map((c) => c.chunk),
          damagedPoints: [...new Set(report.points.problems.map((p) => p.pointId))].slice(0, 100),
        },
      },
    ]);
    const final: RepoConfig = { ...cfg };
    delete final.upgrade;
    await writeConfig(root, final);
    await crashPoint('upgrade-config-final');
    await removeChunks(root);
  } finally {
    await store?.close();
    await guard.release();
  }
}

/** Steps 1 and 2, then again until a pass finds nothing new (normally the second). */
async function convertAll(root: string, cfg: RepoConfig, store: PackStore, packer: UpgradePacker, own: ReadonlySet<string>, actor: string, opts: UpgradeOptions, report: UpgradeReport): Promise<void> {
  const progress = opts.onProgress;
  for (let pass = 1; ; pass++) {
    const total = pass === 1 && progress ? await countChunkFiles(root) : 0;
    let chunksDone = 0;
    const chunks = await copyChunks({ root, store, packer, chunkSize: cfg.chunkSize, actor, onChunk: () => progress?.({ phase: 'chunks', done: ++chunksDone, total }) });
    await packer.flush();
    const pointsTotal = pass === 1 && progress ? (await pointDirs(root)).length : 0;
    let pointsDone = 0;
    const points = await convertPoints({ root, packer, codec: store.codec, fanout: cfg.treeFanout ?? DEFAULT_TREE_FANOUT, onPoint: () => progress?.({ phase: 'points', done: ++pointsDone, total: pointsTotal }) });
    merge(report, pass, chunks, points);
    const late = await blockers(root, own);
    if (late.length > 0) throw inUseError(root, late, ' (it goes on from where it stopped)');
    if (pass > 1 && chunks.copied === 0 && points.converted === 0) return;
    if (pass >= 4) {
      throw new AppError('REPO_LOCKED', `repository ${root}: format-1 chunks or points keep appearing while the upgrade runs: stop every olvm-backup program using it, then run the upgrade again`);
    }
  }
}

function merge(report: UpgradeReport, pass: number, chunks: ChunkCopyResult, points: PointsResult): void {
  const c = report.chunks;
  if (pass === 1) {
    c.seen = chunks.seen;
    c.alreadyPacked = chunks.alreadyPacked;
  }
  c.copied += chunks.copied;
  c.bytesCopied += chunks.bytesCopied;
  c.corrupt.push(...chunks.corrupt);
  const p = report.points;
  if (pass === 1) {
    p.seen = points.seen;
    p.alreadyConverted = points.alreadyConverted;
    p.damaged = points.damaged;
  }
  p.converted += points.converted;
  const key = (x: PointProblem): string => `${x.pointId}\0${x.device ?? ''}\0${x.kind}`;
  const known = new Set(p.problems.map(key));
  for (const x of points.problems) if (!known.has(key(x))) p.problems.push(x);
}

function upgradingConfig(v1: RepoConfig, packSize: number, actor: string): RepoConfig {
  return {
    ...v1,
    version: 2,
    repositoryId: v1.repositoryId || randomUUID(),
    packSize,
    treeFanout: DEFAULT_TREE_FANOUT,
    encryption: null,
    upgrade: { from: 1, startedAt: new Date().toISOString(), actor },
  };
}

/** Before the config change, while the upgrade holds the repository: everything under tmp/ (its
 *  own staging, and format-1 staging of writers that died: their VMs' locks are the upgrade's
 *  or dead) and gc-pending/ (copied into packs with the chunks). */
async function removeStaging(root: string): Promise<void> {
  for (const name of await fs.readdir(path.join(root, TMP_DIR)).catch(() => [] as string[])) await fs.rm(path.join(root, TMP_DIR, name), { recursive: true, force: true });
  await fs.rm(path.join(root, GC_PENDING_DIR), { recursive: true, force: true });
}

/** After the config change: the chunk files (format-2 programs never look at chunks/, so this
 *  may run, or finish after a crash, while they work). True if there were any. */
async function removeChunks(root: string): Promise<boolean> {
  if (!(await pathExists(path.join(root, CHUNKS_DIR)))) return false;
  await fs.rm(path.join(root, CHUNKS_DIR), { recursive: true, force: true });
  return true;
}

async function verifyUpgraded(root: string, actor: string, opts: UpgradeOptions): Promise<VerifyReport> {
  const repo = await Repository.open(root, opts.workers ? { workers: opts.workers } : {});
  try {
    return await repo.verify({ actor, repair: true, onProgress: (done, total) => opts.onProgress?.({ phase: 'verify', done, total }) });
  } finally {
    await repo.close();
  }
}

/** The dry run: what is there to copy and convert, and what would stop the upgrade. */
async function plan(root: string, config: RepoConfig, report: UpgradeReport): Promise<void> {
  report.blockers = await blockers(root);
  const gc = await readLock(path.join(root, LOCKS_DIR, GC_LOCK_FILE));
  if (gc?.info && !isStale(gc.info)) report.blockers.unshift(`a garbage collection (pid ${gc.info.pid} on ${gc.info.hostname} since ${gc.info.startedAt})`);
  report.packSize = config.packSize ?? null;
  report.freeBytes = await fs.statfs(root).then((st) => st.bavail * st.bsize).catch(() => null);
  const index = new RepoIndex(root);
  if (config.version === 2) await index.refresh();
  const c = report.chunks;
  for await (const f of chunkFiles(root)) {
    c.seen++;
    if (index.has(Buffer.from(f.hex, 'hex'))) {
      c.alreadyPacked++;
      continue;
    }
    const st = await fs.stat(f.file).catch(() => undefined);
    if (!st) continue;
    c.copied++;
    c.bytesCopied += st.size;
  }
  const packer = new UpgradePacker(root, path.join(root, TMP_DIR, UPGRADE_STAGING_DIR), DEFAULT_PACK_SIZE, index);
  report.points = await convertPoints({ root, packer, codec: new BlobCodec(config.zstdLevel, null), fanout: config.treeFanout ?? DEFAULT_TREE_FANOUT }, { dryRun: true });
}
