import { randomUUID } from 'crypto';
import * as path from 'path';
import type { BackupMethod } from '../backup';
import type { JobUser } from '../jobs';
import type { Policy, PolicyDetail, PolicyInput, PolicyRun, PolicySaveResponse, PolicyWarning } from './model';
import { toApiPolicy, toApiRun, type PoliciesTable } from './policiesTable';
import type { PolicyOwner, StoredPolicy } from './store';
import { AppError, describeError, isAppError } from '../errors';
import { parseRepoLocation } from '../repository';
import type { Logger } from '../util/log';
import { checkCron, isTimeZone, localTime, nextRuns } from './cron';
import { nextFire } from './plan';
import type { Scheduler } from './scheduler';
import { selectVms, type SchedulerEngine } from './selection';

export interface PolicyServiceDeps {
  store: PoliciesTable;
  scheduler: Scheduler;
  /** The service account. */
  engine: SchedulerEngine;
  /** Told of every change, like `scheduler`. */
  verifyScheduler?: { policiesChanged(): void };
  bootCheckScheduler?: { policiesChanged(): void };
  log: Logger;
  clock?: () => Date;
  /** The service has S3 connection settings (sync.s3, or repository.s3's) for a policy's
   *  `syncTo: s3://BUCKET/PREFIX`; without them such a syncTo is refused when saved. */
  syncS3Configured?: boolean;
}

export type SavedPolicy = PolicySaveResponse;

const RECENT_RUNS = 20;
/** How long the VM → policies map (engine searches, one per policy) is reused. */
const BY_VM_CACHE_MS = 30_000;

/**
 * Policy management as the API uses it: checks a definition against the engine (cron, time
 * zone, the tag exists, the search is accepted), reports overlaps with other enabled policies
 * as warnings, stores it and tells the scheduler.
 */
export class PolicyService {
  private readonly clock: () => Date;
  private byVm: { at: number; map: Promise<Map<string, StoredPolicy[]>> } | undefined;

  constructor(private readonly d: PolicyServiceDeps) {
    this.clock = d.clock ?? (() => new Date());
  }

  list(): Array<Policy & { nextRun: string | null }> {
    const now = this.clock();
    return this.d.store.listPolicies().map((p) => ({ ...toApiPolicy(p), nextRun: p.enabled ? (nextFire(p, now)?.toISOString() ?? null) : null }));
  }

  detail(id: string): PolicyDetail | undefined {
    const p = this.d.store.getPolicy(id);
    if (!p) return undefined;
    return {
      ...toApiPolicy(p),
      nextRuns: p.enabled ? nextRuns(p.schedule, p.timeZone, this.clock(), 5).map((d) => ({ at: d.toISOString(), local: localTime(d, p.timeZone) })) : [],
      nextVerify: p.enabled && p.verifySchedule ? (nextRuns(p.verifySchedule, p.timeZone, this.clock(), 1).map((d) => ({ at: d.toISOString(), local: localTime(d, p.timeZone) }))[0] ?? null) : null,
      runs: this.d.store.runsOf(id, RECENT_RUNS).map((r) => toApiRun(r, this.d.store.runVms(r.id))),
    };
  }

  /** Recent runs of every policy (deleted ones' too), newest first, with their VMs. */
  recentRuns(limit: number): PolicyRun[] {
    return this.d.store.recentRuns(limit).map((r) => toApiRun(r, this.d.store.runVms(r.id)));
  }

  get(id: string): StoredPolicy | undefined {
    return this.d.store.getPolicy(id);
  }

  /** The VM ids a selection means now (service account); missing explicit ids are left out. */
  async selectedVmIds(sel: PolicyInput['selection']): Promise<string[]> {
    if ('vmIds' in sel) return [...sel.vmIds];
    return (await selectVms(this.d.engine, sel)).vms.map((v) => v.id);
  }

  /**
   * The names of the enabled policies selecting each VM now (the VM list shows them; a VM in
   * none is flagged). Reused for a short while; a policy whose selection the engine cannot
   * resolve now is left out (logged).
   */
  async policiesByVm(): Promise<Map<string, string[]>> {
    const by = await this.selectingPolicies();
    return new Map([...by].map(([vmId, ps]) => [vmId, ps.map((p) => p.name)]));
  }

  /** The method the enabled policies selecting each VM ask for: the first by name that names
   *  one (a VM absent from the map: none does, the service's default applies). */
  async methodsByVm(): Promise<Map<string, BackupMethod>> {
    const out = new Map<string, BackupMethod>();
    for (const [vmId, ps] of await this.selectingPolicies()) {
      const method = ps.find((p) => p.method !== undefined)?.method;
      if (method) out.set(vmId, method);
    }
    return out;
  }

  /** VM id → the enabled policies selecting it, in name order; reused for a short while. */
  private selectingPolicies(): Promise<Map<string, StoredPolicy[]>> {
    const now = Date.now();
    if (this.byVm && now - this.byVm.at < BY_VM_CACHE_MS) return this.byVm.map;
    const map = (async () => {
      const out = new Map<string, StoredPolicy[]>();
      for (const p of this.d.store.listPolicies()) {
        if (!p.enabled) continue;
        try {
          for (const id of await this.selectedVmIds(p.selection)) out.set(id, [...(out.get(id) ?? []), p]);
        } catch (err) {
          this.d.log.warn({ policy: p.name, err: describeError(err) }, 'could not resolve the vms of a policy');
        }
      }
      return out;
    })();
    this.byVm = { at: now, map };
    map.catch(() => (this.byVm = undefined));
    return map;
  }

  /** BAD_REQUEST naming the field for what the shape check cannot see. */
  async check(input: PolicyInput): Promise<void> {
    const cron = checkCron(input.schedule);
    if (cron) throw new AppError('BAD_REQUEST', `request body.schedule: ${cron}`);
    const verifyCron = input.verifySchedule === undefined ? undefined : checkCron(input.verifySchedule);
    if (verifyCron) throw new AppError('BAD_REQUEST', `request body.verifySchedule: ${verifyCron}`);
    this.checkTimeZone(input.timeZone);
    if (input.syncTo !== undefined) this.checkSyncTo(input.syncTo);
    if (input.window && input.window.startMinutes !== undefined && input.window.durationMinutes > 1440) {
      throw new AppError('BAD_REQUEST', 'request body.window.durationMinutes: a daily window (with startMinutes) lasts at most 1440 minutes');
    }
    await this.checkSelection(input.selection);
  }

  /** An absolute directory, or s3://BUCKET/PREFIX the service can reach (its config's sync.s3). */
  private checkSyncTo(syncTo: string): void {
    let where: ReturnType<typeof parseRepoLocation>;
    try {
      where = parseRepoLocation(syncTo);
    } catch (err) {
      throw new AppError('BAD_REQUEST', `request body.syncTo: ${describeError(err)}`, { cause: err });
    }
    if (where.kind === 'local' && !path.isAbsolute(where.dir)) {
      throw new AppError('BAD_REQUEST', `request body.syncTo: "${syncTo}" is neither an absolute path of a repository directory nor s3://BUCKET/PREFIX`);
    }
    if (where.kind === 's3' && this.d.syncS3Configured !== true) {
      throw new AppError('BAD_REQUEST', `request body.syncTo: "${syncTo}" is on object storage, but the service has no S3 connection settings for it: set sync.s3 (endpoint, region, credentialsFile …) in its config file, or put the repository itself on S3 (repository.s3)`);
    }
  }

  checkTimeZone(timeZone: string): void {
    if (!isTimeZone(timeZone)) throw new AppError('BAD_REQUEST', `request body.timeZone: "${timeZone}" is not an IANA time zone (e.g. "Europe/Berlin", "UTC")`);
  }

  /** The tag exists, the engine accepts the search, explicit ids are not repeated. */
  async checkSelection(sel: PolicyInput['selection']): Promise<void> {
    if ('tag' in sel && !(await this.d.engine.findTagByName(sel.tag))) {
      throw new AppError('BAD_REQUEST', `request body.selection.tag: the engine has no tag "${sel.tag}"`);
    }
    if ('search' in sel) {
      try {
        await this.d.engine.findVms(sel.search);
      } catch (err) {
        if (isAppError(err, 'ENGINE_HTTP_ERROR') && err.details?.['status'] === 400) {
          throw new AppError('BAD_REQUEST', `request body.selection.search: the engine refused the search: ${describeError(err)}`);
        }
        throw err;
      }
    }
    if ('vmIds' in sel && new Set(sel.vmIds.map((v) => v.toLowerCase())).size !== sel.vmIds.length) {
      throw new AppError('BAD_REQUEST', 'request body.selection.vmIds: lists a vm twice');
    }
  }

  /** Overlaps with other enabled policies, an empty selection, a disabled policy. */
  async warnings(input: PolicyInput, selfId: string | null, selected: string[]): Promise<PolicyWarning[]> {
    const out: PolicyWarning[] = [];
    if (!input.enabled) out.push({ code: 'disabled', message: 'the policy is disabled: it does not run on its schedule' });
    if (selected.length === 0) out.push({ code: 'empty-selection', message: 'the selection matches no vm now' });
    if (!input.enabled || selected.length === 0) return out;
    const mine = new Set(selected);
    for (const other of this.d.store.listPolicies()) {
      if (other.id === selfId || !other.enabled) continue;
      let theirs: string[];
      try {
        theirs = await this.selectedVmIds(other.selection);
      } catch (err) {
        this.d.log.warn({ policy: other.name, err: describeError(err) }, 'could not resolve a policy for the overlap check');
        continue;
      }
      const both = theirs.filter((id) => mine.has(id));
      if (both.length > 0) {
        out.push({ code: 'overlap', message: `${both.length} vm${both.length === 1 ? ' is' : 's are'} also selected by the enabled policy "${other.name}" (${both.join(', ')})` });
      }
    }
    return out;
  }

  async create(input: PolicyInput, by: PolicyOwner, selected: string[]): Promise<PolicySaveResponse> {
    const at = this.clock().toISOString();
    const firedThrough = this.d.scheduler.firedThroughNow();
    const p: StoredPolicy = { ...input, id: randomUUID(), createdAt: at, updatedAt: at, updatedBy: { id: by.id, name: by.name }, owner: by, firedThrough, verifyFiredThrough: firedThrough };
    const warnings = await this.warnings(input, null, selected);
    this.d.store.insertPolicy(p);
    this.d.log.info({ policy: p.name, policyId: p.id, user: by.name }, 'policy created');
    this.byVm = undefined;
    this.policiesChanged();
    return { policy: this.detail(p.id)!, warnings };
  }

  /** A changed policy owes no fire time from before the change. */
  async update(id: string, input: PolicyInput, by: PolicyOwner, selected: string[]): Promise<PolicySaveResponse> {
    const warnings = await this.warnings(input, id, selected);
    this.d.store.updatePolicy(id, input, this.clock().toISOString(), by, this.d.scheduler.firedThroughNow());
    this.d.log.info({ policy: input.name, policyId: id, user: by.name }, 'policy changed');
    this.byVm = undefined;
    this.policiesChanged();
    return { policy: this.detail(id)!, warnings };
  }

  /** A run in progress goes on (its jobs are queued already); no new one starts. */
  remove(id: string, by: JobUser): boolean {
    const p = this.d.store.getPolicy(id);
    const ok = this.d.store.deletePolicy(id);
    if (ok) this.d.log.info({ policy: p?.name, policyId: id, user: by.name }, 'policy deleted');
    this.byVm = undefined;
    this.policiesChanged();
    return ok;
  }

  private policiesChanged(): void {
    this.d.scheduler.policiesChanged();
    this.d.verifyScheduler?.policiesChanged();
    this.d.bootCheckScheduler?.policiesChanged();
  }

  runNow(id: string, by: JobUser): PolicyRun {
    const run = this.d.scheduler.runNow(id, by);
    return toApiRun(run, this.d.store.runVms(run.id));
  }

  /** For logs: a fire time in the policy's zone. */
  static local(d: Date, tz: string): string {
    return localTime(d, tz);
  }
}
