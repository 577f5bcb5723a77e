import type { Statement } from 'better-sqlite3';
import { decodeCursor, encodeCursor, jsonList, sqliteCode, StatementCache, type Db } from '../catalog';
import { AppError } from '../errors';
import { jobToRow, rowToJob, type JobParams, type JobRow } from './jobRow';
import { JOB_STATES, type Job, type JobLogEntry, type JobState } from './model';
import { parseFacts, parseSpec, type JobFacts, type JobSpec } from './spec';
import type { JobPatch, JobStore } from './types';

export interface JobQuery {
  /** Only jobs of these VMs; an empty list matches no job. Any length (bound as one JSON value). */
  vmIds?: readonly string[];
  /** Only jobs in these states; an empty list matches no job. */
  states?: readonly JobState[];
  /** The `nextBefore` of the previous page. */
  before?: string;
  limit: number;
}

export interface JobTotals {
  /** Over every succeeded job still in the catalog. */
  bytesRead: number;
  bytesStored: number;
  succeeded: number;
  /** Durations of the (at most) 1000 most recently finished succeeded jobs, newest first. */
  durationsMs: number[];
}

const PATCHABLE = ['state', 'startedAt', 'finishedAt', 'cancelRequested', 'progress', 'result', 'error', 'hostId'] as const satisfies ReadonlyArray<
  keyof JobPatch
>;
const DURATION_SAMPLE = 1000;

export const INTERRUPTED_ERROR = { code: 'JOB_INTERRUPTED', message: 'the backup service stopped while this job ran' } as const;

const COLUMNS =
  'id, kind, state, vm_id, vm_name, host_id, requested_by_id, requested_by_name, force_full, created_at, started_at, ' +
  'finished_at, cancel_requested, progress, result, error, restore';

/**
 * The job queue's store in the catalog's SQLite file, the `jobs` and `job_log` tables: every backup job the service admitted, its outcome and its
 * log, so that history survives restarts and a restart can tell which jobs it interrupted.
 * All methods are synchronous (better-sqlite3); each write is one transaction.
 */
export class JobsTable implements JobStore {
  private readonly insertStmt: Statement<[JobParams]>;
  private readonly updateStmt: Statement<[JobParams]>;
  private readonly getStmt: Statement<[string], JobRow>;
  private readonly activeStmt: Statement<[], JobRow>;
  private readonly runningStmt: Statement<[], JobRow>;
  private readonly unsettledStmt: Statement<[], JobRow>;
  private readonly lastByVmStmt: Statement<[string], JobRow>;
  private readonly appendLogStmt: Statement<[{ job_id: string; at: string; level: string; message: string }]>;
  private readonly logStmt: Statement<[string, number], JobLogEntry>;
  private readonly metaStmt: Statement<[string], { meta: string; kind: string; spec: string | null }>;
  private readonly setMetaStmt: Statement<[string, string]>;
  private readonly setSpecStmt: Statement<[string, string]>;
  private readonly setQueuedSpecStmt: Statement<[string, string]>;
  private readonly countsStmt: Statement<[], { state: string; n: number }>;
  private readonly totalsStmt: Statement<[], { bytes_read: number; bytes_stored: number; succeeded: number }>;
  private readonly durationsStmt: Statement<[number], { ms: number | null }>;
  /** listJobs' statements, one per combination of filters, prepared on first use. */
  private readonly listStmts: StatementCache<JobRow>;

  constructor(private readonly db: Db) {
    this.listStmts = new StatementCache(db, (where) => `SELECT ${COLUMNS} FROM jobs ${where} ORDER BY created_at DESC, id DESC LIMIT ?`);
    this.insertStmt = db.prepare(
      `INSERT INTO jobs (${COLUMNS}) VALUES (@id, @kind, @state, @vm_id, @vm_name, @host_id, @requested_by_id, ` +
        '@requested_by_name, @force_full, @created_at, @started_at, @finished_at, @cancel_requested, @progress, @result, @error, @restore)',
    );
    this.updateStmt = db.prepare(
      'UPDATE jobs SET state = @state, host_id = @host_id, started_at = @started_at, finished_at = @finished_at, ' +
        'cancel_requested = @cancel_requested, progress = @progress, result = @result, error = @error WHERE id = @id',
    );
    this.getStmt = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE id = ?`);
    this.activeStmt = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, id`);
    this.runningStmt = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE state = 'running' ORDER BY created_at, id`);
    // JSON true reads as 1 (spec.ts JobFacts: what settleInterruptedJobs still owes). An engine
    // backup a failed or cancelled job's own cleanup could not finalize (an engine that did not
    // answer then) holds the VM's lock just the same: settled too.
    this.unsettledStmt = db.prepare(
      `SELECT ${COLUMNS} FROM jobs WHERE ` +
        "(state = 'interrupted' AND json_extract(meta, '$.vmStartedByJob') = 1 AND coalesce(json_extract(meta, '$.vmStoppedAgain'), 0) != 1) OR " +
        "(state IN ('interrupted', 'failed', 'cancelled') AND json_extract(meta, '$.engineBackup.backupId') IS NOT NULL AND coalesce(json_extract(meta, '$.engineBackupFinished'), 0) != 1)" +
        ' ORDER BY created_at, id',
    );
    // One index probe per VM instead of sorting all their jobs.
    this.lastByVmStmt = db.prepare(
      `SELECT ${COLUMNS} FROM jobs WHERE rowid IN (SELECT (SELECT j.rowid FROM jobs j WHERE j.vm_id = v.value ` +
        'ORDER BY j.created_at DESC, j.id DESC LIMIT 1) FROM json_each(?) v)',
    );
    this.appendLogStmt = db.prepare(
      'INSERT INTO job_log (job_id, seq, at, level, message) VALUES (@job_id, ' +
        '(SELECT coalesce(max(seq), 0) + 1 FROM job_log WHERE job_id = @job_id), @at, @level, @message)',
    );
    // The newest `limit` lines, returned oldest first: a long log keeps its end (the outcome).
    this.logStmt = db.prepare(
      'SELECT at, level, message FROM (SELECT seq, at, level, message FROM job_log WHERE job_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
    );
    this.metaStmt = db.prepare('SELECT meta, kind, spec FROM jobs WHERE id = ?');
    this.setMetaStmt = db.prepare('UPDATE jobs SET meta = ? WHERE id = ?');
    this.setSpecStmt = db.prepare('UPDATE jobs SET spec = ? WHERE id = ?');
    this.setQueuedSpecStmt = db.prepare("UPDATE jobs SET spec = ? WHERE id = ? AND state = 'queued'");
    this.countsStmt = db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state');
    this.totalsStmt = db.prepare(
      "SELECT coalesce(sum(json_extract(result, '$.bytesRead')), 0) AS bytes_read, " +
        "coalesce(sum(json_extract(result, '$.bytesStored')), 0) AS bytes_stored, count(*) AS succeeded " +
        "FROM jobs WHERE state = 'succeeded'",
    );
    this.durationsStmt = db.prepare(
      "SELECT json_extract(result, '$.durationMs') AS ms FROM jobs WHERE state = 'succeeded' ORDER BY finished_at DESC LIMIT ?",
    );
  }

  /** The job and what it was asked to do, in one transaction. INVALID_ARGUMENT if a job with
   *  this id exists already. */
  insertJob(job: Job, spec: JobSpec): void {
    try {
      this.db.transaction(() => {
        this.insertStmt.run(jobToRow(job));
        this.setSpecStmt.run(JSON.stringify(spec), job.id);
      }).immediate();
    } catch (err) {
      if (sqliteCode(err)?.startsWith('SQLITE_CONSTRAINT')) {
        throw new AppError('INVALID_ARGUMENT', `job ${job.id} already exists in the catalog`, { cause: err });
      }
      throw err;
    }
  }

  /** Applies the fields of `patch` that are not undefined (null clears) and returns the job as
   *  stored. INVALID_ARGUMENT naming the job when there is none with this id. */
  updateJob(id: string, patch: JobPatch): Job {
    return this.db.transaction(() => {
      const job = this.requireJob(id);
      const next: Job = { ...job };
      // Only the patchable fields, even if the caller's object carries more (id, vmId...).
      for (const k of PATCHABLE) {
        const v = patch[k];
        if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
      }
      this.updateStmt.run(jobToRow(next));
      return next;
    }).immediate();
  }

  getJob(id: string): Job | undefined {
    const row = this.getStmt.get(id);
    return row ? rowToJob(row) : undefined;
  }

  /** Newest first (by createdAt, then id), `limit` at a time. */
  listJobs(q: JobQuery): { jobs: Job[]; nextBefore: string | null } {
    if (!Number.isSafeInteger(q.limit) || q.limit < 1) throw new AppError('INVALID_ARGUMENT', `invalid job list limit ${q.limit}`);
    const params: unknown[] = [];
    const where: string[] = [];
    if (q.vmIds) {
      where.push('vm_id IN (SELECT value FROM json_each(?))');
      params.push(jsonList(q.vmIds));
    }
    if (q.states) {
      where.push('state IN (SELECT value FROM json_each(?))');
      params.push(jsonList(q.states));
    }
    if (q.before !== undefined) {
      const c = decodeCursor(q.before);
      where.push('(created_at, id) < (?, ?)');
      params.push(c.createdAt, c.id);
    }
    params.push(q.limit + 1); // one more tells whether there is a next page
    const rows = this.listStmts.get(where).all(...params);
    const jobs = rows.slice(0, q.limit).map(rowToJob);
    const last = jobs[jobs.length - 1];
    return { jobs, nextBefore: rows.length > q.limit && last ? encodeCursor(last) : null };
  }

  /** Queued and running jobs, oldest first: the order the runner takes them up again. */
  activeJobs(): Job[] {
    return this.activeStmt.all().map(rowToJob);
  }

  /** The newest job of each VM that has one. */
  lastJobByVm(vmIds: readonly string[]): Map<string, Job> {
    const out = new Map<string, Job>();
    for (const row of this.lastByVmStmt.all(jsonList(vmIds))) out.set(row.vm_id, rowToJob(row));
    return out;
  }

  /** INVALID_ARGUMENT when the job does not exist. */
  appendLog(jobId: string, entry: JobLogEntry): void {
    try {
      // One statement, so the next seq is computed and used atomically.
      this.appendLogStmt.run({ job_id: jobId, at: entry.at, level: entry.level, message: entry.message });
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new AppError('INVALID_ARGUMENT', `job ${jobId} not found in the catalog`, { cause: err });
      }
      throw err;
    }
  }

  /** The last `limit` log lines of the job, oldest first ([] for an unknown job). */
  jobLog(jobId: string, limit = 1000): JobLogEntry[] {
    return this.logStmt.all(jobId, limit).map((r) => ({ at: r.at, level: r.level, message: r.message }));
  }

  /** Merges `patch` into the job's facts (shallow). INVALID_ARGUMENT when the job does not exist. */
  rememberFacts(jobId: string, patch: JobFacts): void {
    this.db.transaction(() => {
      const row = this.metaStmt.get(jobId);
      if (!row) throw notFound(jobId);
      // older versions kept other keys in this column: they stay, unread
      const merged = { ...(JSON.parse(row.meta) as Record<string, unknown>), ...patch };
      this.setMetaStmt.run(JSON.stringify(merged), jobId);
    }).immediate();
  }

  /** INVALID_ARGUMENT when the job does not exist. */
  jobFacts(jobId: string): JobFacts {
    const row = this.metaStmt.get(jobId);
    if (!row) throw notFound(jobId);
    return parseFacts(row.meta);
  }

  /** What the job was asked to do. INVALID_ARGUMENT when the job does not exist. */
  jobSpec(jobId: string): JobSpec {
    const row = this.metaStmt.get(jobId);
    if (!row) throw notFound(jobId);
    return parseSpec(jobId, row.kind as Job['kind'], row.spec);
  }

  /** The runner reads the spec when the job starts: until then it may still change. */
  updateQueuedSpec(jobId: string, spec: JobSpec): boolean {
    return this.setQueuedSpecStmt.run(JSON.stringify(spec), jobId).changes === 1;
  }

  /**
   * At start-up, before the runner takes jobs: a job still `running` was running in the process
   * that died, and nothing is running it now. Queued jobs stay queued; they run after the
   * restart. Returns the jobs it changed, as stored.
   */
  markRunningInterrupted(now: string): Job[] {
    return this.db.transaction(() => {
      const changed: Job[] = [];
      for (const row of this.runningStmt.all()) {
        const job: Job = { ...rowToJob(row), state: 'interrupted', finishedAt: now, error: { ...INTERRUPTED_ERROR } };
        this.updateStmt.run(jobToRow(job));
        this.appendLogStmt.run({ job_id: job.id, at: now, level: 'error', message: `job interrupted: ${INTERRUPTED_ERROR.message}` });
        changed.push(job);
      }
      return changed;
    }).immediate();
  }

  /** Ended jobs whose facts say something is still to be settled outside the repository (an
   *  interrupted one's VM the backup started; an engine backup not finalized): those of this
   *  start-up and those an earlier start-up could not settle. */
  unsettledJobs(): Job[] {
    return this.unsettledStmt.all().map(rowToJob);
  }

  /** Every state present, 0 when no job is in it. */
  jobCounts(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of this.countsStmt.all()) if (r.state in counts) counts[r.state as JobState] = r.n;
    return counts;
  }

  /** For the Prometheus metrics. */
  jobTotals(): JobTotals {
    const t = this.totalsStmt.get();
    const durationsMs = this.durationsStmt
      .all(DURATION_SAMPLE)
      .map((r) => r.ms)
      .filter((ms): ms is number => typeof ms === 'number');
    return { bytesRead: t?.bytes_read ?? 0, bytesStored: t?.bytes_stored ?? 0, succeeded: t?.succeeded ?? 0, durationsMs };
  }

  private requireJob(id: string): Job {
    const job = this.getJob(id);
    if (!job) throw notFound(id);
    return job;
  }
}

function notFound(jobId: string): AppError {
  return new AppError('INVALID_ARGUMENT', `job ${jobId} not found in the catalog`);
}
