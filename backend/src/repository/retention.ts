import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { appendAudit } from './audit';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import { clearBootCheck } from './bootChecks';
import { clearDamageMark } from './damage';
import { gfsPrune, normalizeRules, rulesKeepSomething, checkTimeZone, type GfsRules } from './gfs';
import { ADMIN_LOCK_FILE, LOCKS_DIR, MANIFEST_FILE, pointDir, POINTS_DIR, TRASH_DIR, trashDir } from './layout';
import { leasedError, liveLeases } from './leases';
import { acquireRepoLock } from './locks';
import { serializeManifest } from './manifest';
import type { RepoKey } from './repoKey';
import { TRASH_MARKER, trashUsers, type TrashMarker } from './trash';
import type { DeleteResult, Lease, Manifest, PruneDecision, PruneReport } from './types';
import type { RepoMirror } from './store/mirror';

/** How long a deletion, lock change or prune waits for another one to finish. */
const ADMIN_LOCK_WAIT_MS = 60_000;

/** @internal What the retention operations need from the repository. */
export interface RetentionContext {
  root: string;
  /** Seals rewritten manifests in an encrypted repository (FORMAT.md §21). */
  manifestKey: RepoKey | null;
  readManifest(pointId: string): Promise<Manifest>;
  /** Readable manifests of complete points (optionally one VM's). */
  listManifests(vmKey?: string): Promise<Manifest[]>;
  /** Remote repository (FORMAT.md §24): deletions and lock changes go to the store too. */
  mirror?: RepoMirror | null;
  /** Remote repository: the packs holding the point's blobs (its retention covers them). */
  pointPacks?(pointId: string): Promise<Set<string>>;
}

/** The store refused to delete a point's manifest: its Object Lock retention runs. The message
 *  says what, if anything, can still delete it: in governance mode the operator's audited
 *  `points delete --bypass-governance`; in compliance mode nothing before the date. */
function storeLockedError(m: Manifest, r: { until?: Date; mode?: 'compliance' | 'governance' }, mirror: RepoMirror): AppError {
  const when = r.until ? ` until ${r.until.toISOString()}` : '';
  const hint =
    r.mode === 'compliance'
      ? `; its retention is in compliance mode: nobody can delete it before that date${mirror.bypassGovernance ? ' (--bypass-governance applies to governance mode only)' : ''}`
      : r.mode === 'governance' && mirror.bypassGovernance
        ? '; its retention is in governance mode and the store refused the bypass: the credentials lack s3:BypassGovernanceRetention'
        : r.mode === 'governance'
          ? "; its retention is in governance mode: an operator may delete it with 'points delete --bypass-governance' (audited; the credentials need s3:BypassGovernanceRetention)"
          : '';
  return new AppError('STORE_OBJECT_LOCKED', `restore point ${m.pointId} of vm ${m.vm.name} is still locked in ${mirror.location}${when} (Object Lock retention): the store refuses to delete it${hint}`, {
    details: { pointId: m.pointId, vmKey: m.vm.key, ...(r.until ? { lockedUntil: r.until.toISOString() } : {}), ...(r.mode ? { objectLockMode: r.mode } : {}) },
  });
}

export function isLocked(m: Pick<Manifest, 'lockedUntil'>, now: Date): boolean {
  return m.lockedUntil !== null && Date.parse(m.lockedUntil) > now.getTime();
}

export function lockedError(m: Manifest, what: string): AppError {
  return new AppError('REPO_POINT_LOCKED', `${what}: restore point ${m.pointId} of vm ${m.vm.name} is locked until ${m.lockedUntil}`, {
    details: { pointId: m.pointId, vmKey: m.vm.key, lockedUntil: m.lockedUntil },
  });
}

function requireText(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new AppError('INVALID_ARGUMENT', `${what} is required`);
  return v.trim();
}

/** Serializes deletions and lock changes of all processes (`locks/admin.lock`). */
export async function withAdminLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.join(root, LOCKS_DIR), { recursive: true });
  const lock = await acquireRepoLock(path.join(root, LOCKS_DIR, ADMIN_LOCK_FILE), 'admin', { waitMs: ADMIN_LOCK_WAIT_MS });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Removes one point; the caller holds the admin lock and has checked its retention lock and its
 * leases. Order: audit record, rename `points/<id>` → `trash/<id>` (the point is gone for every
 * new reader at once), then the directory is removed — unless a writer of the same VM holds its
 * lock, which may have read this point's index as the base of an incremental, or a reader took
 * its lease between the caller's check and the rename (it may have read the manifest): then it
 * waits in trash/ for GC, which removes it once neither is left.
 */
export async function deleteChecked(root: string, m: Manifest, who: { actor: string; reason: string }, mirror: RepoMirror | null = null): Promise<DeleteResult> {
  const { pointId } = m;
  const vmKey = m.vm.key;
  await appendAudit(root, [
    { actor: who.actor, action: 'delete', pointId, vmKey, reason: who.reason, details: { createdAt: m.createdAt, lockedUntil: m.lockedUntil, ...(mirror?.bypassGovernance ? { bypassGovernance: true } : {}) } },
  ]);
  if (mirror) {
    // remote (FORMAT.md §24): the store's copy goes first, manifest first; refused under
    // Object Lock, the point stays whole in the store and here
    const r = await mirror.deletePoint(pointId).catch(async (err: unknown) => {
      await appendAudit(root, [{ actor: who.actor, action: 'delete-failed', pointId, vmKey, reason: who.reason }]).catch(() => undefined);
      throw err;
    });
    if (r.state === 'locked') {
      await appendAudit(root, [{ actor: who.actor, action: 'delete-failed', pointId, vmKey, reason: `${who.reason} (the store refused: Object Lock retention)` }]).catch(() => undefined);
      throw storeLockedError(m, r, mirror);
    }
  }
  const trash = trashDir(root, pointId);
  try {
    await fs.mkdir(path.dirname(trash), { recursive: true });
    await fs.rename(pointDir(root, pointId), trash);
  } catch (err) {
    await appendAudit(root, [{ actor: who.actor, action: 'delete-failed', pointId, vmKey, reason: who.reason }]).catch(() => undefined);
    if (isErrno(err, 'ENOENT')) throw new AppError('REPO_POINT_NOT_FOUND', `restore point ${pointId} not found`, { cause: err });
    throw new AppError('REPO_IO_ERROR', `deleting point ${pointId}: moving it out of ${POINTS_DIR}/ failed`, { cause: err });
  }
  await fsyncDir(path.join(root, POINTS_DIR));
  const deletedAt = new Date().toISOString();
  const users = await trashUsers(root, vmKey, pointId);
  const kept = users.writing || users.leases.length > 0;
  if (kept) {
    const marker: TrashMarker = { pointId, vmKey, deletedAt, actor: who.actor, reason: who.reason };
    await writeFileAtomic(path.join(trash, TRASH_MARKER), Buffer.from(JSON.stringify(marker) + '\n'));
    await fsyncDir(path.join(root, TRASH_DIR));
  } else {
    // A crash before this leaves trash/<id> without its marker: GC then goes by its ctime.
    await fs.rm(trash, { recursive: true, force: true });
  }
  await clearDamageMark(root, pointId);
  await clearBootCheck(root, pointId);
  return { pointId, vmKey, deferred: kept };
}

export async function deletePoint(ctx: RetentionContext, pointId: string, opts: { reason: string; actor: string; now?: Date }): Promise<DeleteResult> {
  const reason = requireText(opts?.reason, `deleting point ${pointId}: a reason`);
  const actor = requireText(opts?.actor, `deleting point ${pointId}: the actor`);
  return withAdminLock(ctx.root, async () => {
    const m = await ctx.readManifest(pointId);
    if (isLocked(m, opts.now ?? new Date())) throw lockedError(m, 'cannot delete');
    const leases = await liveLeases(ctx.root, pointId);
    if (leases.length > 0) throw leasedError('cannot delete', { pointId, vmKey: m.vm.key, vmName: m.vm.name }, leases);
    return deleteChecked(ctx.root, m, { actor, reason }, ctx.mirror ?? null);
  });
}

/** A retention lock's end as callers give it (a Date or ISO text); INVALID_ARGUMENT naming
 *  `what` when it is no date. */
export function parseLockDate(until: unknown, what: string): Date {
  const d = until instanceof Date ? until : typeof until === 'string' ? new Date(until) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new AppError('INVALID_ARGUMENT', `${what}: retention lock ${JSON.stringify(until)} is not a date`);
  return d;
}

async function rewriteManifest(ctx: RetentionContext, m: Manifest): Promise<void> {
  const dir = pointDir(ctx.root, m.pointId);
  await writeFileAtomic(path.join(dir, MANIFEST_FILE), serializeManifest(m, ctx.manifestKey));
  const mirror = ctx.mirror;
  if (!mirror) return;
  // remote: the packs and files get the new retention (only ever lengthened), then the manifest
  const packs = async (): Promise<Set<string>> => (ctx.pointPacks ? ctx.pointPacks(m.pointId) : new Set());
  await mirror.manifestRewritten({ pointId: m.pointId, dir, lockedUntil: m.lockedUntil === null ? null : new Date(m.lockedUntil), packs });
}

export async function extendLock(
  ctx: RetentionContext,
  pointId: string,
  until: Date | string,
  opts: { actor: string; reason?: string; now?: Date },
): Promise<Manifest> {
  const target = parseLockDate(until, `locking point ${pointId}`);
  const actor = requireText(opts.actor, `locking point ${pointId}: the actor`);
  return withAdminLock(ctx.root, async () => {
    const m = await ctx.readManifest(pointId);
    const now = opts.now ?? new Date();
    if (m.lockedUntil !== null && target.getTime() < Date.parse(m.lockedUntil)) {
      throw new AppError(
        'REPO_POINT_LOCKED',
        `restore point ${pointId} of vm ${m.vm.name} is locked until ${m.lockedUntil}: a retention lock can only be extended (asked for ${target.toISOString()})`,
        { details: { pointId, vmKey: m.vm.key, lockedUntil: m.lockedUntil, requested: target.toISOString() } },
      );
    }
    if (m.lockedUntil !== null && target.getTime() === Date.parse(m.lockedUntil)) return m;
    if (target.getTime() <= now.getTime()) {
      throw new AppError('INVALID_ARGUMENT', `locking point ${pointId}: ${target.toISOString()} is not in the future`);
    }
    const next: Manifest = { ...m, lockedUntil: target.toISOString() };
    await appendAudit(ctx.root, [
      { actor, action: 'lock-extend', pointId, vmKey: m.vm.key, reason: opts.reason ?? null, details: { from: m.lockedUntil, to: next.lockedUntil } },
    ]);
    await rewriteManifest(ctx, next);
    return next;
  });
}

export async function unlockPoint(ctx: RetentionContext, pointId: string, opts: { reason: string; operator: string }): Promise<Manifest> {
  const reason = requireText(opts?.reason, `unlocking point ${pointId}: a reason`);
  const operator = requireText(opts?.operator, `unlocking point ${pointId}: the operator`);
  return withAdminLock(ctx.root, async () => {
    const m = await ctx.readManifest(pointId);
    // Audited first: there is no unlock without its record.
    await appendAudit(ctx.root, [{ actor: operator, action: 'unlock', pointId, vmKey: m.vm.key, reason, details: { from: m.lockedUntil } }]);
    if (m.lockedUntil === null) return m;
    const next: Manifest = { ...m, lockedUntil: null };
    await rewriteManifest(ctx, next);
    return next;
  });
}

export interface PruneOptions {
  /** IANA zone the calendar rules are counted in; default the system's zone. */
  tz?: string;
  /** When retention locks are judged (default: now). */
  now?: Date;
  dryRun?: boolean;
  /** Only this VM's points (default: every VM, each VM's points pruned on their own). */
  vmKey?: string;
  actor?: string;
  reason?: string;
}

export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export async function prune(ctx: RetentionContext, rules: GfsRules, opts: PruneOptions): Promise<PruneReport> {
  const counts = normalizeRules(rules);
  if (!rulesKeepSomething(rules)) {
    throw new AppError('INVALID_ARGUMENT', 'retention rules keep no point at all: refusing to prune every point (give at least one keep rule)');
  }
  const timeZone = opts.tz ?? systemTimeZone();
  checkTimeZone(timeZone);
  const now = opts.now ?? new Date();
  const dryRun = opts.dryRun === true;
  const actor = opts.actor ?? 'prune';

  const plan = async (): Promise<PruneDecision[]> => {
    const manifests = await ctx.listManifests(opts.vmKey);
    const leases = new Map<string, Lease>();
    for (const l of await liveLeases(ctx.root)) if (!leases.has(l.pointId)) leases.set(l.pointId, l);
    const byVm = new Map<string, Manifest[]>();
    for (const m of manifests) {
      const list = byVm.get(m.vm.key);
      if (list) list.push(m);
      else byVm.set(m.vm.key, [m]);
    }
    const decisions: PruneDecision[] = [];
    for (const vmKey of [...byVm.keys()].sort()) {
      const list = byVm.get(vmKey) as Manifest[];
      const byId = new Map(list.map((m) => [m.pointId, m]));
      for (const d of gfsPrune(list.map((m) => ({ id: m.pointId, time: new Date(m.createdAt) })), rules, { timeZone })) {
        const m = byId.get(d.id) as Manifest;
        const lease = d.keep || isLocked(m, now) ? undefined : leases.get(m.pointId);
        decisions.push({
          pointId: m.pointId,
          vmKey,
          vmName: m.vm.name,
          createdAt: m.createdAt,
          action: d.keep ? 'keep' : isLocked(m, now) ? 'locked' : lease ? 'leased' : 'remove',
          keptBy: d.keptBy,
          lockedUntil: m.lockedUntil,
          ...(lease ? { leased: { purpose: lease.purpose, since: lease.startedAt } } : {}),
        });
      }
    }
    return decisions;
  };

  const stillLocked: string[] = [];
  const report = (decisions: PruneDecision[], deferred: string[]): PruneReport => ({
    dryRun,
    timeZone,
    now: now.toISOString(),
    rules: { keepLast: counts.last, daily: counts.daily, weekly: counts.weekly, monthly: counts.monthly, yearly: counts.yearly },
    points: decisions,
    removed: decisions.filter((d) => d.action === 'remove').map((d) => d.pointId),
    deferred,
    locked: decisions.filter((d) => d.action === 'locked').map((d) => d.pointId),
    leased: decisions.filter((d) => d.action === 'leased').map((d) => d.pointId),
    kept: decisions.filter((d) => d.action === 'keep').length,
    ...(ctx.mirror ? { stillLocked } : {}),
  });

  if (dryRun) return report(await plan(), []);

  return withAdminLock(ctx.root, async () => {
    // Planned under the lock: no lock change or deletion can slip in between plan and action.
    const decisions = await plan();
    const toRemove = decisions.filter((d) => d.action === 'remove');
    const reason = opts.reason ?? `prune ${JSON.stringify(rules)} in ${timeZone}`;
    await appendAudit(ctx.root, [
      {
        actor,
        action: 'prune',
        vmKey: opts.vmKey ?? null,
        reason,
        details: {
          rules: counts,
          timeZone,
          remove: toRemove.map((d) => d.pointId),
          locked: decisions.filter((d) => d.action === 'locked').map((d) => d.pointId),
          leased: decisions.filter((d) => d.action === 'leased').map((d) => d.pointId),
          kept: decisions.filter((d) => d.action === 'keep').length,
        },
      },
    ]);
    const deferred: string[] = [];
    for (const d of toRemove) {
      let m: Manifest;
      try {
        m = await ctx.readManifest(d.pointId);
      } catch (err) {
        if (isAppError(err, 'REPO_POINT_NOT_FOUND')) continue;
        throw err;
      }
      if (isLocked(m, now)) {
        d.action = 'locked';
        d.lockedUntil = m.lockedUntil;
        continue;
      }
      // a reader may have taken its lease since the plan: it is left for a later prune
      const [lease] = await liveLeases(ctx.root, d.pointId);
      if (lease) {
        d.action = 'leased';
        d.leased = { purpose: lease.purpose, since: lease.startedAt };
        continue;
      }
      let r: DeleteResult;
      try {
        r = await deleteChecked(ctx.root, m, { actor, reason }, ctx.mirror ?? null);
      } catch (err) {
        // the store's Object Lock outlives the repository's lock (an operator's unlock on a
        // compliance bucket): still locked, reported, and the prune goes on
        if (!isAppError(err, 'STORE_OBJECT_LOCKED')) throw err;
        d.action = 'locked';
        const until = err.details?.['lockedUntil'];
        d.lockedUntil = typeof until === 'string' ? until : m.lockedUntil;
        stillLocked.push(d.pointId);
        continue;
      }
      if (r.deferred) deferred.push(r.pointId);
    }
    return report(decisions, deferred);
  });
}
