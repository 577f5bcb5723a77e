import { sqliteCode, type Db } from '../catalog';
import { AppError } from '../errors';
import type { JobUser } from '../jobs';
import type { Policy, PolicyInput, PolicyRun, PolicyRunState, PolicyRunTrigger, PolicyRunVmState } from './model';
import type { NewRun, PolicyOwner, PolicyStore, StoredPolicy, StoredRun, StoredRunVm } from './store';

interface PolicyRow {
  id: string;
  name: string;
  definition: string;
  enabled: number;
  created_at: string;
  updated_at: string;
  updated_by: string;
  fired_through: string;
  verify_fired_through: string | null;
}

interface RunRow {
  id: string;
  policy_id: string;
  policy_name: string;
  trigger: string;
  scheduled_at: string | null;
  missed_runs: number;
  created_at: string;
  finished_at: string | null;
  window_start: string | null;
  window_end: string | null;
  concurrency: number;
  state: string;
  requested_by: string;
  message: string | null;
}

interface RunVmRow {
  run_id: string;
  seq: number;
  vm_id: string;
  vm_name: string;
  host_id: string | null;
  state: string;
  job_id: string | null;
  joined: number;
  attempts: number;
  reason: string | null;
  fell_back_to_full: number;
  finished_at: string | null;
}

const ACTIVE_RUN_STATES = ['resolving', 'running'];

/**
 * The `policies`, `policy_runs` and `policy_run_vms` tables. A run is inserted together with the
 * advance of its policy's fire-time watermark (one transaction, and a unique index on the fire
 * time), so a crash can neither lose a fire time nor run it twice; each VM of a run carries its
 * state and its latest job, so a restart resumes exactly the VMs not done.
 */
export class PoliciesTable implements PolicyStore {
  constructor(private readonly db: Db) {}

  listPolicies(): StoredPolicy[] {
    return this.db.prepare<[], PolicyRow>('SELECT * FROM policies ORDER BY name').all().map(rowToPolicy);
  }

  getPolicy(id: string): StoredPolicy | undefined {
    const row = this.db.prepare<[string], PolicyRow>('SELECT * FROM policies WHERE id = ?').get(id);
    return row ? rowToPolicy(row) : undefined;
  }

  /** BAD_REQUEST naming the field when the name is taken. */
  insertPolicy(p: StoredPolicy): void {
    try {
      this.db
        .prepare('INSERT INTO policies (id, name, definition, enabled, created_at, updated_at, updated_by, fired_through, verify_fired_through) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(p.id, p.name, JSON.stringify(definitionOf(p)), p.enabled ? 1 : 0, p.createdAt, p.updatedAt, JSON.stringify(p.owner), p.firedThrough, p.verifyFiredThrough);
    } catch (err) {
      throw nameTaken(err, p.name);
    }
  }

  /** Replaces the definition; the watermarks (backup and verify) are kept unless given. NOT_FOUND if none. */
  updatePolicy(id: string, input: PolicyInput, at: string, by: PolicyOwner, firedThrough?: string): StoredPolicy {
    try {
      const r = this.db
        .prepare('UPDATE policies SET name = ?, definition = ?, enabled = ?, updated_at = ?, updated_by = ?, fired_through = coalesce(?, fired_through), verify_fired_through = coalesce(?, verify_fired_through) WHERE id = ?')
        .run(input.name, JSON.stringify(definitionOf(input)), input.enabled ? 1 : 0, at, JSON.stringify(by), firedThrough ?? null, firedThrough ?? null, id);
      if (r.changes === 0) throw new AppError('NOT_FOUND', `policy ${id} not found`);
    } catch (err) {
      throw nameTaken(err, input.name);
    }
    return this.getPolicy(id)!;
  }

  /** Runs stay (history) after their policy is deleted. */
  deletePolicy(id: string): boolean {
    return this.db.prepare('DELETE FROM policies WHERE id = ?').run(id).changes > 0;
  }

  setFiredThrough(id: string, at: string): void {
    this.db.prepare('UPDATE policies SET fired_through = ? WHERE id = ?').run(at, id);
  }

  setVerifyFiredThrough(id: string, at: string): void {
    this.db.prepare('UPDATE policies SET verify_fired_through = ? WHERE id = ?').run(at, id);
  }

  /**
   * Inserts a run and, for a scheduled one, advances the policy's watermark to its fire time, in
   * one transaction. false when that fire time already has a run (nothing changed).
   */
  insertRun(r: NewRun): boolean {
    return this.db
      .transaction(() => {
        if (r.scheduledAt !== null) {
          const exists = this.db.prepare('SELECT 1 FROM policy_runs WHERE policy_id = ? AND scheduled_at = ?').get(r.policy.id, r.scheduledAt);
          if (exists) return false;
          this.db.prepare('UPDATE policies SET fired_through = max(fired_through, ?) WHERE id = ?').run(r.scheduledAt, r.policy.id);
        }
        this.db
          .prepare(
            'INSERT INTO policy_runs (id, policy_id, policy_name, trigger, scheduled_at, missed_runs, created_at, finished_at, window_start, window_end, ' +
              'concurrency, state, requested_by, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(
            r.id,
            r.policy.id,
            r.policy.name,
            r.trigger,
            r.scheduledAt,
            r.missedRuns,
            r.createdAt,
            r.finishedAt ?? null,
            r.windowStart,
            r.windowEnd,
            r.policy.concurrency,
            r.state ?? 'resolving',
            JSON.stringify(r.requestedBy),
            r.message ?? null,
          );
        return true;
      })
      .immediate();
  }

  getRun(id: string): StoredRun | undefined {
    const row = this.db.prepare<[string], RunRow>('SELECT * FROM policy_runs WHERE id = ?').get(id);
    return row ? rowToRun(row) : undefined;
  }

  activeRuns(): StoredRun[] {
    return this.db
      .prepare<[string], RunRow>('SELECT * FROM policy_runs WHERE state IN (SELECT value FROM json_each(?)) ORDER BY created_at, id')
      .all(JSON.stringify(ACTIVE_RUN_STATES))
      .map(rowToRun);
  }

  /** Newest first. */
  runsOf(policyId: string, limit: number): StoredRun[] {
    return this.db.prepare<[string, number], RunRow>('SELECT * FROM policy_runs WHERE policy_id = ? ORDER BY created_at DESC, id DESC LIMIT ?').all(policyId, limit).map(rowToRun);
  }

  /** Every policy's runs, newest first. */
  recentRuns(limit: number): StoredRun[] {
    return this.db.prepare<[number], RunRow>('SELECT * FROM policy_runs ORDER BY created_at DESC, id DESC LIMIT ?').all(limit).map(rowToRun);
  }

  runVms(runId: string): StoredRunVm[] {
    return this.db.prepare<[string], RunVmRow>('SELECT * FROM policy_run_vms WHERE run_id = ? ORDER BY seq').all(runId).map(rowToRunVm);
  }

  /** Usually one; several when runs of overlapping policies joined the same pending backup. */
  runVmsByJob(jobId: string): StoredRunVm[] {
    return this.db.prepare<[string], RunVmRow>('SELECT * FROM policy_run_vms WHERE job_id = ?').all(jobId).map(rowToRunVm);
  }

  /** Writes a run as the run machine left it — its state and every VM's — in one transaction
   *  (VMs are added the first time, updated after). */
  saveRun(run: StoredRun, vms: readonly StoredRunVm[]): void {
    this.db
      .transaction(() => {
        this.db.prepare('UPDATE policy_runs SET state = ?, finished_at = ?, message = ? WHERE id = ?').run(run.state, run.finishedAt, run.message, run.id);
        const put = this.db.prepare(
          'INSERT INTO policy_run_vms (run_id, seq, vm_id, vm_name, host_id, state, job_id, joined, attempts, reason, fell_back_to_full, finished_at) ' +
            'VALUES (@runId, @seq, @vmId, @vmName, @hostId, @state, @jobId, @joined, @attempts, @reason, @fellBackToFull, @finishedAt) ' +
            'ON CONFLICT (run_id, vm_id) DO UPDATE SET state = excluded.state, job_id = excluded.job_id, joined = excluded.joined, attempts = excluded.attempts, ' +
            'reason = excluded.reason, fell_back_to_full = excluded.fell_back_to_full, finished_at = excluded.finished_at',
        );
        vms.forEach((v, seq) =>
          put.run({ runId: run.id, seq, vmId: v.vmId, vmName: v.vmName, hostId: v.hostId, state: v.state, jobId: v.jobId, joined: v.joined ? 1 : 0, attempts: v.attempts, reason: v.reason, fellBackToFull: v.fellBackToFull ? 1 : 0, finishedAt: v.finishedAt }),
        );
      })
      .immediate();
  }

  /** Settled VM outcomes of policy runs by policy name and state (metrics: they only grow). */
  outcomeCounts(): Array<{ policy: string; state: PolicyRunVmState; n: number }> {
    return this.db
      .prepare<[], { policy: string; state: PolicyRunVmState; n: number }>(
        'SELECT r.policy_name AS policy, v.state AS state, count(*) AS n FROM policy_run_vms v JOIN policy_runs r ON r.id = v.run_id ' +
          "WHERE v.state IN ('succeeded', 'failed', 'skipped', 'cancelled') GROUP BY r.policy_name, v.state ORDER BY 1, 2",
      )
      .all();
  }

  /** Runs by policy name and trigger (metrics). */
  runCounts(): Array<{ policy: string; trigger: PolicyRunTrigger; n: number }> {
    return this.db
      .prepare<[], { policy: string; trigger: PolicyRunTrigger; n: number }>('SELECT policy_name AS policy, trigger, count(*) AS n FROM policy_runs GROUP BY policy_name, trigger ORDER BY 1, 2')
      .all();
  }
}

export function toApiRun(r: StoredRun, vms: StoredRunVm[]): PolicyRun {
  return {
    id: r.id,
    policyId: r.policyId,
    policyName: r.policyName,
    trigger: r.trigger,
    scheduledAt: r.scheduledAt,
    missedRuns: r.missedRuns,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
    windowEnd: r.windowEnd,
    state: r.state,
    requestedBy: r.requestedBy,
    message: r.message,
    vms: vms.map((v) => ({ vmId: v.vmId, vmName: v.vmName, state: v.state, jobId: v.jobId, attempts: v.attempts, reason: v.reason, fellBackToFull: v.fellBackToFull })),
  };
}

export function toApiPolicy(p: StoredPolicy): Policy {
  // the watermarks and the owner's groups are the scheduler's own
  const policy: Policy & Partial<Pick<StoredPolicy, 'firedThrough' | 'verifyFiredThrough' | 'owner'>> = { ...p };
  delete policy.firedThrough;
  delete policy.verifyFiredThrough;
  delete policy.owner;
  return policy;
}

/** `updated_by` holds the owner (older rows: the user only, whose groups are then unknown). */
function ownerFrom(json: string): { owner: PolicyOwner; updatedBy: JobUser } {
  const o = JSON.parse(json) as Partial<PolicyOwner> & JobUser;
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return { owner: { id: o.id, name: o.name, groupIds: strings(o.groupIds), groupNames: strings(o.groupNames) }, updatedBy: { id: o.id, name: o.name } };
}

function definitionOf(p: PolicyInput): Omit<PolicyInput, 'name' | 'enabled'> {
  return {
    schedule: p.schedule,
    timeZone: p.timeZone,
    selection: p.selection,
    retention: p.retention,
    lockDays: p.lockDays,
    concurrency: p.concurrency,
    window: p.window,
    ...(p.consistency ? { consistency: p.consistency } : {}),
    ...(p.method ? { method: p.method } : {}),
    ...(p.verifySchedule ? { verifySchedule: p.verifySchedule } : {}),
    ...(p.bootCheck && p.bootCheck !== 'off' ? { bootCheck: p.bootCheck } : {}),
    ...(p.syncTo ? { syncTo: p.syncTo } : {}),
  };
}

function rowToPolicy(r: PolicyRow): StoredPolicy {
  const d = JSON.parse(r.definition) as Omit<PolicyInput, 'name' | 'enabled'>;
  return {
    id: r.id,
    name: r.name,
    schedule: d.schedule,
    timeZone: d.timeZone,
    selection: d.selection,
    retention: d.retention,
    lockDays: d.lockDays,
    concurrency: d.concurrency,
    window: d.window,
    enabled: r.enabled !== 0,
    ...(d.consistency ? { consistency: d.consistency } : {}),
    ...(d.method ? { method: d.method } : {}),
    ...(d.verifySchedule ? { verifySchedule: d.verifySchedule } : {}),
    ...(d.bootCheck && d.bootCheck !== 'off' ? { bootCheck: d.bootCheck } : {}),
    ...(d.syncTo ? { syncTo: d.syncTo } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...ownerFrom(r.updated_by),
    firedThrough: r.fired_through,
    // policies from before migration 5 owe no verify from before it
    verifyFiredThrough: r.verify_fired_through ?? r.fired_through,
  };
}

function rowToRun(r: RunRow): StoredRun {
  return {
    id: r.id,
    policyId: r.policy_id,
    policyName: r.policy_name,
    trigger: r.trigger as PolicyRunTrigger,
    scheduledAt: r.scheduled_at,
    missedRuns: r.missed_runs,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    windowStart: r.window_start,
    windowEnd: r.window_end,
    concurrency: r.concurrency,
    state: r.state as PolicyRunState,
    requestedBy: JSON.parse(r.requested_by) as JobUser,
    message: r.message,
  };
}

function rowToRunVm(r: RunVmRow): StoredRunVm {
  return {
    runId: r.run_id,
    vmId: r.vm_id,
    vmName: r.vm_name,
    hostId: r.host_id,
    state: r.state as PolicyRunVmState,
    jobId: r.job_id,
    joined: r.joined !== 0,
    attempts: r.attempts,
    reason: r.reason,
    fellBackToFull: r.fell_back_to_full !== 0,
    finishedAt: r.finished_at,
  };
}

function nameTaken(err: unknown, name: string): unknown {
  if (sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE') return new AppError('BAD_REQUEST', `request body.name: a policy named "${name}" exists already`);
  return err;
}
