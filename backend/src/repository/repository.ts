/**
 * The Repository facade: the one object other layers use (imported from `../repository`). It
 * owns the repository's configuration, its chunk worker pool, its open writers and its read
 * leases, and hands each operation to the module that owns it: points.ts (reading), pointReader.ts
 * (reading under a lease), pointWriter.ts (writing), verify.ts + verifyRepairs.ts, retention.ts
 * (locks, deletion, prune), gc.ts, leases.ts, locks.ts, audit.ts, damage.ts.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { isErrno } from './atomicFile';
import { processActor, readAudit, type AuditRecord } from './audit';
import { ChunkFileSink, PackSink, type ChunkSink } from './chunkSink';
import { ChunkStore } from './chunkStore';
import { DEFAULT_TREE_FANOUT, newConfig, readConfig, writeConfig, type NewConfigOptions, type RepoConfig } from './config';
import { readDamageMark, readDamageMarks } from './damage';
import type { DiskIndex } from './diskIndex';
import type { GcOptions } from './gc';
import { collectChunkGarbage } from './gcChunks';
import { collectPackGarbage } from './gcPacks';
import type { GfsRules } from './gfs';
import { AUDIT_FILE, CHUNK_TMP_DIR, CHUNKS_DIR, CONFIG_FILE, isSafeName, LAYOUT_DIRS, LAYOUT_DIRS_V2, lockPath, PACK_TMP_DIR, pointDir } from './layout';
import { LeaseKeeper, liveLeases } from './leases';
import { breakVmLock, readLock, type LockInfo } from './locks';
import { summarize } from './manifest';
import { openPoint, type OpenPointOptions, type PointReader } from './pointReader';
import { listManifests, pathExists, pointIds, readManifest, readPointIndex } from './points';
import { PackStore } from './packStore';
import { beginPoint, type PointWriter } from './pointWriter';
import { createKeyFile, unlockRepository, type KeyFileOptions } from './keyFiles';
import { checkKey, keyCheck, newRepoKey, type RepoKey } from './repoKey';
import * as retention from './retention';
import type { DamageMark, DeleteResult, GcReport, Lease, Manifest, PointSummary, PruneReport, VerifyReport, VmIdentity } from './types';
import { verifyRepository, type VerifyOptions } from './verify';
import { addPackChecks, checkRecorded, type CheckedCopies } from './verifyPacks';
import { packRepairs } from './verifyPackRepairs';
import { applyVerifyRepairs } from './verifyRepairs';
import type { RemoteAttachment } from './store/mirror';
import { packsOfIds, pointPacks } from './store/pointPacks';

export interface RepositoryOptions {
  /** Chunk worker threads (default: twice the cores, 4–8). */
  workers?: number;
  /** An encrypted repository (format 2) is opened with its passphrase (a key file it opens)...
   *  A function is called only when the repository turns out to be encrypted: a command can
   *  pass where its passphrase would come from, and a plain repository never asks for it. */
  passphrase?: string | (() => Promise<string>);
  /** ... or with its key (checked against config.json's key check). */
  key?: RepoKey;
}

export interface InitOptions extends Omit<NewConfigOptions, 'encryption'>, RepositoryOptions {
  /** Format 2 only: encrypt with a new random key, wrapped by `passphrase` in keys/. */
  encryption?: 'aes-256-gcm' | null;
  /** scrypt cost of the first key file (tests use a lower N; FORMAT.md §21). */
  scrypt?: KeyFileOptions['scrypt'];
}

/**
 * A chunk repository in a local directory (format: FORMAT.md beside this file). Safe for any
 * number of readers and for concurrent writers of different VMs, in this process or others;
 * writers of the same VM exclude each other through the VM lock.
 */
export class Repository {
  readonly dir: string;
  readonly chunkSize: number;
  readonly config: Readonly<RepoConfig>;
  /** Format 1: chunk files; format 2: packs. */
  private readonly store: ChunkStore | PackStore;
  private readonly writers = new Set<PointWriter>();
  private readonly leaseKeeper: LeaseKeeper;
  /** The repository key of an encrypted repository, else null. */
  private readonly key: RepoKey | null;
  /** A remote repository (object storage, FORMAT.md §24): where its durable copy is and how this
   *  process opened it; null for a local repository. `dir` is then its cache directory. */
  readonly remote: { location: string; mode: 'writer' | 'reader' } | null;
  private readonly attachment: RemoteAttachment | null;

  private constructor(dir: string, config: RepoConfig, opts: RepositoryOptions, attachment: RemoteAttachment | null = null) {
    this.dir = dir;
    this.config = config;
    this.chunkSize = config.chunkSize;
    this.key = opts.key ?? null;
    this.attachment = attachment;
    this.remote = attachment ? { location: attachment.mirror.location, mode: attachment.mirror.mode } : null;
    const mirror = attachment ? { mirror: attachment.mirror } : {};
    this.store =
      config.version === 1
        ? new ChunkStore(path.join(dir, CHUNKS_DIR), config.zstdLevel, opts.workers)
        : new PackStore({ root: dir, zstdLevel: config.zstdLevel, packSize: config.packSize as number, key: opts.key ?? null, ...(opts.workers ? { workers: opts.workers } : {}), ...mirror });
    this.leaseKeeper = new LeaseKeeper(dir);
  }

  /** Creates a repository in `dir` (created if needed, must be empty). REPO_EXISTS if it is
   *  already a repository or holds anything else; INVALID_ARGUMENT for a bad chunk size. */
  static async init(dir: string, opts: InitOptions = {}): Promise<Repository> {
    const root = path.resolve(dir);
    const { encryption, ...rest } = opts;
    if (encryption && encryption !== 'aes-256-gcm') throw new AppError('INVALID_ARGUMENT', `unknown encryption ${JSON.stringify(encryption)} (aes-256-gcm or none)`);
    const passphrase = encryption ? await passphraseOf(opts) : undefined;
    if (encryption && (passphrase === undefined || passphrase === '')) {
      throw new AppError('REPO_KEY_REQUIRED', 'an encrypted repository needs a passphrase (--passphrase-file FILE or OLVM_BACKUP_REPO_PASSPHRASE)');
    }
    const key = encryption ? newRepoKey() : null;
    const config = newConfig({ ...rest, ...(encryption ? { version: 2, encryption: { algorithm: 'aes-256-gcm', idHash: 'hmac-sha256', kdf: 'scrypt', keyCheck: '' } } : {}) });
    if (key && config.encryption) config.encryption.keyCheck = keyCheck(key, config.repositoryId);
    const layout: readonly string[] = config.version === 1 ? LAYOUT_DIRS : LAYOUT_DIRS_V2;
    await fs.mkdir(root, { recursive: true }).catch((err: unknown) => {
      if (isErrno(err, 'EEXIST', 'ENOTDIR')) throw new AppError('REPO_EXISTS', `${root} exists and is not a directory`, { cause: err });
      throw new AppError('REPO_IO_ERROR', `creating ${root} failed`, { cause: err });
    });
    const entries = await fs.readdir(root);
    if (entries.includes(CONFIG_FILE)) throw new AppError('REPO_EXISTS', `${root} is already a repository`);
    // Left-overs of an init that crashed before writing the config are fine; anything else is not ours.
    for (const e of entries) {
      const ours = layout.includes(e) && (await fs.readdir(path.join(root, e)).catch(() => ['x'])).length === 0;
      if (!ours) throw new AppError('REPO_EXISTS', `${root} is not empty and not a repository (found ${e})`);
    }
    for (const d of layout) await fs.mkdir(path.join(root, d), { recursive: true });
    if (key) await createKeyFile(root, config.repositoryId, key, passphrase as string, opts.scrypt ? { scrypt: opts.scrypt } : {});
    // The config last: its presence is what makes the directory a repository.
    await writeConfig(root, config);
    return new Repository(root, config, { ...opts, ...(key ? { key } : {}) });
  }

  /** REPO_NOT_FOUND without directory or config; REPO_INVALID for a config this code cannot use. */
  static async open(dir: string, opts: RepositoryOptions = {}): Promise<Repository> {
    return Repository.openAttached(dir, opts, null);
  }

  /** @internal open.ts: a remote repository's cache directory, attached to its store. */
  static async openAttached(dir: string, opts: RepositoryOptions, attachment: RemoteAttachment | null): Promise<Repository> {
    const root = path.resolve(dir);
    const config = await readConfig(root);
    if (attachment && config.version !== 2) throw new AppError('REPO_INVALID', `${attachment.mirror.location}: only a format-2 repository can be remote (this one is format ${config.version})`);
    const key = config.encryption ? await repositoryKey(root, config, opts) : null;
    const r = new Repository(root, config, { ...opts, ...(key ? { key } : {}) }, attachment);
    if (r.store instanceof PackStore) await r.store.index.refresh();
    return r;
  }

  /** Whether chunks, indexes and manifests' sensitive parts are encrypted (FORMAT.md §21). */
  get encrypted(): boolean {
    return this.key !== null;
  }

  /** The format version: 1 (chunk files) or 2 (packs). */
  get formatVersion(): 1 | 2 {
    return this.config.version;
  }

  private sinkFor(staging: string, lockedUntil: Date | null): ChunkSink {
    if (this.store instanceof PackStore) return new PackSink(this.store.session(path.join(staging, PACK_TMP_DIR), lockedUntil), this.config.treeFanout ?? DEFAULT_TREE_FANOUT);
    return new ChunkFileSink(this.store, path.join(staging, CHUNK_TMP_DIR));
  }

  /** Complete points only (those with a readable manifest), oldest first. */
  async listPoints(filter: { vmKey?: string } = {}): Promise<PointSummary[]> {
    return (await listManifests(this.dir, filter.vmKey, this.key)).map(summarize);
  }

  /** The manifest alone, without a lease: for listings and for a quick look. A reader that goes
   *  on to read indexes and chunks uses openPoint. */
  async readManifest(pointId: string): Promise<Manifest> {
    return readManifest(this.dir, pointId, this.key);
  }

  async latestPoint(vmKey: string): Promise<Manifest | undefined> {
    const points = await this.listPoints({ vmKey });
    const last = points[points.length - 1];
    return last ? this.readManifest(last.pointId) : undefined;
  }

  /**
   * Opens a point for reading under a read lease (FORMAT.md §15): from the lease's creation on,
   * deleting the point is refused (REPO_POINT_LEASED), prune leaves it for later, and gc keeps
   * its chunks — in every process sharing the repository. The lease is renewed while the reader
   * is open; call release() in a finally. REPO_POINT_NOT_FOUND if there is no such point.
   */
  async openPoint(pointId: string, opts: OpenPointOptions): Promise<PointReader> {
    return openPoint({ root: this.dir, store: this.store, manifestKey: this.key, chunkSize: this.chunkSize, leases: this.leaseKeeper }, pointId, opts);
  }

  /** The live read leases of every point (or one point), oldest first: who reads what since when. */
  async leases(pointId?: string): Promise<Lease[]> {
    return liveLeases(this.dir, pointId);
  }

  /** The index of a disk without a lease: for a writer's parent point, which its VM lock
   *  protects (FORMAT.md §13). Other readers use openPoint. */
  async readIndex(pointId: string, device: string): Promise<DiskIndex> {
    return readPointIndex(this.dir, this.store, await this.readManifest(pointId), device);
  }

  /** Takes the VM's lock (REPO_LOCKED), removes what crashed writers of this VM left in
   *  staging, and returns the writer of the new point. Its retention lock is given to commit;
   *  a remote repository also wants it here (`lockedUntil`: its packs get Object Lock retention
   *  at upload, FORMAT.md §24). STORE_READ_ONLY on a remote repository opened as a reader. */
  async beginPoint(params: { vm: VmIdentity; pointId: string; createdAt: Date; parentPointId: string | null; lockedUntil?: Date | string | null }): Promise<PointWriter> {
    this.requireWritable(`writing point ${params?.pointId}`);
    // a writer deduplicates against what other processes stored since the last look
    if (this.store instanceof PackStore) await this.store.index.refresh();
    const store = this.store;
    const mirror = this.attachment && store instanceof PackStore ? { mirror: this.attachment.mirror, packsOf: (ids: ReadonlySet<string>) => packsOfIds(store, ids) } : null;
    return beginPoint({ root: this.dir, sinkFor: (staging, lockedUntil) => this.sinkFor(staging, lockedUntil), mirror, manifestKey: this.key, chunkSize: this.chunkSize, writers: this.writers }, params);
  }

  /** STORE_READ_ONLY on a remote repository opened as a reader: it never writes to the store. */
  private requireWritable(what: string): void {
    if (this.remote?.mode === 'reader') throw new AppError('STORE_READ_ONLY', `${what}: repository ${this.remote.location} is opened as a reader (read-only)`);
  }

  /**
   * Re-hashes every chunk of every point (or of `opts.pointId`, or of `opts.vmKey`'s points),
   * each point under a read lease while it is verified, and reports per point; format 2, for
   * the whole repository, also checks every pack file and repository index file. With `repair`
   * (default true): corrupt chunk files go to quarantine/ (format 2: corrupt blob copies are
   * recorded there, and a damaged index file is rebuilt from the packs), so the next backup
   * reading that content stores it again; damaged points get a mark (damaged/<id>.json, see
   * damagedPoints), and points found whole again lose theirs; each change is audited.
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    const actor = opts.actor ?? processActor('verify');
    const store = this.store;
    // format 2: the copies the points' check finds intact are not read again by the packs' check
    const checked: CheckedCopies = new Map();
    let report = await verifyRepository(
      {
        pointIds: opts.vmKey !== undefined && opts.pointId === undefined ? async () => (await this.listPoints({ vmKey: opts.vmKey })).map((p) => p.pointId) : () => pointIds(this.dir),
        pointExists: (id) => pathExists(pointDir(this.dir, id)),
        open: (id) => this.openPoint(id, { purpose: 'verify', holder: actor }),
        checkChunk: (hex, length) => (store instanceof PackStore ? checkRecorded(store, hex, length, checked) : store.check(hex, length)),
        parallelism: this.store.parallelism,
      },
      opts,
    );
    const whole = opts.pointId === undefined && opts.vmKey === undefined;
    // format 2: the pack files and repository index files themselves (verifyPacks.ts)
    if (store instanceof PackStore && whole) report = await addPackChecks(report, this.dir, store, checked, opts.signal);
    if (opts.repair === false) return report;
    return applyVerifyRepairs(this.dir, report, actor, this.store instanceof PackStore ? packRepairs(this.dir, this.store) : undefined);
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
   * Deletes a restore point, refusing while its retention lock runs (REPO_POINT_LOCKED, naming
   * the date) or while it is being read (REPO_POINT_LEASED, naming what reads it and since
   * when). The point leaves points/ by one rename, so it vanishes for every new reader at once;
   * the deletion is in the audit log before it happens. Its chunks stay until gc().
   * REPO_POINT_NOT_FOUND for an unknown point.
   */
  async deletePoint(pointId: string, opts: { reason: string; actor: string }): Promise<DeleteResult> {
    this.requireWritable(`deleting point ${pointId}`);
    return retention.deletePoint(this.retentionContext(), pointId, opts);
  }

  /**
   * Sets the point's retention lock to `until`. A lock can only be lengthened: an earlier date
   * than the current lock is REPO_POINT_LOCKED; a date in the past INVALID_ARGUMENT. Audited.
   * A new point gets its lock at commit (CommitParams.lockedUntil), not from this.
   */
  async extendLock(pointId: string, until: Date | string, opts: { actor?: string; reason?: string } = {}): Promise<Manifest> {
    this.requireWritable(`locking point ${pointId}`);
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
    this.requireWritable(`unlocking point ${pointId}`);
    return retention.unlockPoint(this.retentionContext(), pointId, opts);
  }

  /**
   * Applies GFS retention (gfs.ts) to each VM's points and deletes those no rule keeps, except
   * points under a retention lock (reported as `locked`) and points being read (reported as
   * `leased`, left for a later prune). `dryRun` only reports. Chunks are freed by gc().
   */
  async prune(rules: GfsRules, opts: retention.PruneOptions = {}): Promise<PruneReport> {
    if (opts.dryRun !== true) this.requireWritable('prune');
    return retention.prune(this.retentionContext(), rules, opts);
  }

  /** Garbage collection (gc.ts; format 1 gcChunks.ts, format 2 gcPacks.ts): removes chunks
   *  (format 2: packs, repacking those mostly garbage) no point references, older than the grace
   *  period and than every running writer; keeps deleted points readers still read. Safe while
   *  backups write and readers read, in any process. */
  async gc(opts: GcOptions = {}): Promise<GcReport> {
    if (opts.dryRun !== true) this.requireWritable('gc');
    const ctx = {
      root: this.dir,
      collectLiveWriters: (add: (key: string) => void): void => {
        for (const w of this.writers) w.collectDigests(add);
      },
    };
    if (this.store instanceof PackStore) return collectPackGarbage({ ...ctx, store: this.store }, opts);
    return collectChunkGarbage(ctx, opts);
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
    const store = this.store;
    const remote = this.attachment && store instanceof PackStore ? { mirror: this.attachment.mirror, pointPacks: async (id: string) => pointPacks(store, await this.readManifest(id), (m, d) => readPointIndex(this.dir, store, m, d)) } : {};
    return { root: this.dir, manifestKey: this.key, readManifest: (id) => this.readManifest(id), listManifests: (vmKey) => listManifests(this.dir, vmKey, this.key), ...remote };
  }

  /** Remote writer: puts keys/ into the store as the cache has it, after a key file was added,
   *  removed or rewrapped in `dir` (keyFiles.ts); nothing for a local repository. */
  async publishKeys(): Promise<void> {
    await this.attachment?.mirror.publishKeys();
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

  /** Aborts writers still open, ends the leases of readers still open, then stops the worker
   *  pool (restarted if used again). */
  async close(): Promise<void> {
    try {
      await Promise.allSettled([...this.writers].map((w) => w.abort()));
      await this.leaseKeeper.releaseAll();
      await this.store.close();
    } finally {
      await this.attachment?.close();
    }
  }

  /** @internal Test hook: a chunk worker exits as if it crashed (format 2: all of them). */
  crashWorkerForTest(): Promise<unknown> {
    if (this.store instanceof PackStore) {
      // format 2: every live worker, so that one holding an open pack of a writer dies too
      const pool = this.store.workers();
      const handles = pool.handles();
      if (handles.length === 0) return pool.run({ op: 'crash' }, 'crash test');
      return Promise.all(handles.map((h) => pool.runOn(h, { op: 'crash' }, 'crash test')));
    }
    return this.store.crashOneWorker();
  }
}

/** The key of an encrypted repository: the one given (checked), or the one its passphrase opens. */
async function repositoryKey(root: string, config: RepoConfig, opts: RepositoryOptions): Promise<RepoKey> {
  const check = config.encryption?.keyCheck as string;
  if (opts.key) {
    checkKey(opts.key, config.repositoryId, check);
    return opts.key;
  }
  const passphrase = await passphraseOf(opts);
  if (passphrase === undefined || passphrase === '') {
    throw new AppError('REPO_KEY_REQUIRED', `repository ${root} is encrypted: give its passphrase (--passphrase-file FILE, or OLVM_BACKUP_REPO_PASSPHRASE)`, {
      details: { repositoryId: config.repositoryId },
    });
  }
  return (await unlockRepository(root, config.repositoryId, passphrase, { keyCheck: check })).key;
}

/** The passphrase given, asking a function for it now (see RepositoryOptions.passphrase). */
async function passphraseOf(opts: RepositoryOptions): Promise<string | undefined> {
  return typeof opts.passphrase === 'function' ? opts.passphrase() : opts.passphrase;
}
