import type { Job, JobSpec } from '../jobs';
import { describeError, isAppError } from '../errors';
import type { GfsRules, Manifest } from '../repository';
import type { Logger } from '../util/log';
import type { RetentionPreview, RetentionRule, RetentionRules } from './model';
import type { RetentionHook } from './scheduler';
import type { StoredPolicy, StoredRun, StoredRunVm } from './store';

/** What policy retention needs of the repository (Repository satisfies it). */
export interface RetentionRepository {
  /** Only ever lengthens a lock (REPO_POINT_LOCKED when it would shorten one). */
  extendLock(pointId: string, until: Date, opts: { actor: string; reason: string }): Promise<Manifest>;
  prune(rules: GfsRules, opts: { tz: string; vmKey: string; actor: string; reason: string }): Promise<{ removed: string[]; locked: string[]; leased: string[] }>;
}

export interface PolicyRetentionDeps {
  repository: RetentionRepository;
  jobs: { getJob(id: string): Job | undefined; jobSpec(id: string): JobSpec };
  /** The catalog's point index, kept in step with the repository. */
  points: { indexPoint(m: Manifest): void; removePoint(id: string): boolean };
  log: Logger;
  clock?: () => Date;
}

const DAY_MS = 86_400_000;

/**
 * After a run: each VM it backed up is pruned by the policy's GFS rules in the policy's time
 * zone. A point is committed with its lock (the lock is in the manifest it is committed with) —
 * except where the run joined a backup another caller had already started: that point was
 * committed with the other job's lock, so it is lengthened here to the policy's (counted from
 * the job's end, never shortened) before the prune. A VM whose backup failed keeps all its
 * points; rules that are all zero mean "keep everything" (no prune). Locked and leased points
 * are never removed: the repository itself refuses (they are reported as `locked` or left for
 * later).
 */
export function policyRetention(d: PolicyRetentionDeps): RetentionHook {
  const clock = d.clock ?? (() => new Date());
  return async (policy, run, vms) => {
    const actor = `policy ${policy.name}`;
    for (const vm of vms) if (vm.state === 'succeeded' && vm.jobId && vm.joined) await lockJoined(d, policy, run, vm, vm.jobId, clock());
    if (Object.values(policy.retention).every((n) => n === 0)) return;
    for (const vm of vms) {
      if (vm.state !== 'succeeded' || !vm.jobId) continue;
      try {
        const r = await d.repository.prune(policy.retention, { tz: policy.timeZone, vmKey: vm.vmId, actor, reason: `retention of policy "${policy.name}" after run ${run.id}` });
        // `removed` includes the points whose files wait in trash/: gone from points/ all the same
        for (const id of r.removed) d.points.removePoint(id);
        d.log.info({ runId: run.id, vm: vm.vmName, removed: r.removed.length, locked: r.locked.length, beingRead: r.leased.length }, 'policy retention applied');
      } catch (err) {
        d.log.warn({ runId: run.id, vm: vm.vmName, err: describeError(err) }, 'policy retention failed for a vm');
      }
    }
  };
}

/** The point of a joined backup gets the policy's lock when its job asked for less. */
async function lockJoined(d: PolicyRetentionDeps, policy: StoredPolicy, run: StoredRun, vm: StoredRunVm, jobId: string, now: Date): Promise<void> {
  try {
    const job = d.jobs.getJob(jobId);
    const spec = d.jobs.jobSpec(jobId);
    const pointId = job?.result?.pointId;
    if (!pointId || spec.kind !== 'backup' || spec.lockDays >= policy.lockDays) return;
    const until = new Date(Date.parse(job.finishedAt ?? now.toISOString()) + policy.lockDays * DAY_MS);
    if (until.getTime() <= now.getTime()) return;
    const reason = `retention lock of policy "${policy.name}" (${policy.lockDays} days): run ${run.id} joined backup job ${jobId}`;
    d.points.indexPoint(await d.repository.extendLock(pointId, until, { actor: `policy ${policy.name}`, reason }));
  } catch (err) {
    // a longer lock set meanwhile (the operator's) is what was wanted
    if (isAppError(err, 'REPO_POINT_LOCKED')) return;
    d.log.warn({ runId: run.id, vm: vm.vmName, jobId, err: describeError(err) }, "could not give a joined backup's point the policy's lock");
  }
}

/** What a preview needs of the repository (Repository satisfies it). */
export interface PreviewRepository {
  prune(rules: GfsRules, opts: { tz: string; vmKey: string; dryRun: true; now: Date }): Promise<{ points: Array<{ pointId: string; vmName: string; createdAt: string; action: 'keep' | 'remove' | 'locked' | 'leased'; keptBy: RetentionRule[]; lockedUntil: string | null }> }>;
}

/**
 * What `rules` would do to each VM's points if a run applied them now: the same dry-run prune
 * a run's retention makes (same repository code, same time zone), without removing anything.
 * Points kept by a rule keep their lock shown; a point only a lock keeps is `locked`. A point no
 * rule or lock keeps that is being read at this instant is `remove`: the preview is of the rules,
 * and a read lease lasts only while a restore, download or verify reads (the prune's own report
 * says `leased`; the run after the read removes it).
 */
export async function previewRetention(
  repository: PreviewRepository,
  vms: Array<{ id: string; name: string }>,
  rules: RetentionRules,
  timeZone: string,
  now: Date,
): Promise<RetentionPreview> {
  const keepsAll = Object.values(rules).every((n) => n === 0);
  const out: RetentionPreview = { keepsAll, timeZone, at: now.toISOString(), vms: [], totals: { keep: 0, remove: 0, locked: 0 } };
  for (const vm of vms) {
    let points: RetentionPreview['vms'][number]['points'];
    if (keepsAll) {
      // the repository refuses rules that keep nothing; "all zero" means "never prune" here
      const all = await repository.prune({ keepLast: Number.POSITIVE_INFINITY }, { tz: timeZone, vmKey: vm.id, dryRun: true, now });
      points = all.points.map((p) => ({ pointId: p.pointId, createdAt: p.createdAt, action: 'keep' as const, keptBy: [], lockedUntil: p.lockedUntil }));
    } else {
      const r = await repository.prune(rules, { tz: timeZone, vmKey: vm.id, dryRun: true, now });
      points = r.points.map((p) => ({ pointId: p.pointId, createdAt: p.createdAt, action: p.action === 'leased' ? 'remove' : p.action, keptBy: p.keptBy, lockedUntil: p.lockedUntil }));
    }
    for (const p of points) out.totals[p.action] += 1;
    out.vms.push({ vmId: vm.id, vmName: vm.name, points });
  }
  return out;
}
