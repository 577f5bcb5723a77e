import { AppError, isAppError } from '../errors';
import { permitsOf, principalIds, principalNames, SUPER_USER_ROLE_ID, type PermitObject } from '../engine';
import type { Authenticator, Principal } from './auth';
import { TtlCache } from './ttlCache';

/**
 * What a portal user may do, decided by the engine's own permission model (README, "Who may do
 * what"): the caller's permits on an object, read with the caller's token the way the oVirt VM
 * Portal reads them (`…/permissions?follow=role.permits`; only entries of the user, the user's
 * groups and Everyone count), cached per token and object for a short time. A lookup that fails
 * denies: the request fails with the engine's error, nothing is allowed on a guess.
 *
 * Backup admins — an engine SuperUser on the system, or a user or group named in
 * `auth.backupAdmins` — may do what concerns every VM (policies by tag or search, retention that
 * deletes, deleted VMs, others' jobs, the audit log).
 */
export interface PermitsOptions {
  auth: Authenticator;
  /** How long one answer is reused (at most 60 s). */
  cacheMs: number;
  /** Engine user names (`name@profile` or `name@authz`) and group names, compared without case. */
  backupAdmins: readonly string[];
}

/** What is refused, and the object as the caller may see it named. */
export interface Needed {
  obj: PermitObject;
  permits: readonly string[];
  /** How the refusal names the object: something the caller already knows (its name, the id
   *  the caller sent). */
  label: string;
}

export class Permits {
  private readonly answers = new TtlCache<ReadonlySet<string>>(20_000);
  private readonly groups = new TtlCache<Array<{ id: string; name: string }>>(5_000);
  private readonly admins = new TtlCache<boolean>(5_000);
  private readonly adminName: (name: string) => boolean;

  constructor(private readonly opts: PermitsOptions) {
    this.adminName = principalNames(opts.backupAdmins);
  }

  /** The caller's permits on `obj`; none on an object the engine does not show the caller. */
  async on(p: Principal, obj: PermitObject): Promise<ReadonlySet<string>> {
    const key = `${p.tokenKey}:${obj.kind}:${'id' in obj ? obj.id : ''}`;
    return this.answers.load(key, this.opts.cacheMs, async () => {
      const ids = principalIds(p.userId, (await this.groupsOf(p)).map((g) => g.id));
      const entries = await p.engine.listPermissions(obj).catch((err: unknown) => {
        if (isAppError(err, 'ENGINE_NOT_FOUND')) return [];
        throw this.mapAuth(p, err);
      });
      return permitsOf(entries, ids);
    });
  }

  async has(p: Principal, need: Omit<Needed, 'label'>): Promise<boolean> {
    const held = await this.on(p, need.obj);
    return need.permits.every((x) => held.has(x));
  }

  /** FORBIDDEN naming each missing permit and the object, unless the caller holds them all. */
  async require(p: Principal, action: string, needs: readonly Needed[]): Promise<void> {
    const missing: Array<{ permit: string; object: string }> = [];
    for (const n of needs) {
      const held = await this.on(p, n.obj);
      for (const permit of n.permits) if (!held.has(permit)) missing.push({ permit, object: n.label });
    }
    if (missing.length === 0) return;
    const what = missing.map((m) => `${m.permit} on ${m.object}`).join(', ');
    throw new AppError('FORBIDDEN', `${p.userName} may not ${action}: the engine grants ${p.userName} no ${what}`, { details: { missing } });
  }

  /** An engine SuperUser on the system, or named (the user or one of the user's groups) in
   *  auth.backupAdmins. */
  async isBackupAdmin(p: Principal): Promise<boolean> {
    return this.admins.load(p.tokenKey, this.opts.cacheMs, async () => {
      if (this.adminName(p.userName)) return true;
      if ((await this.groupsOf(p)).some((g) => this.adminName(g.name))) return true;
      const roles = await p.engine.listSystemRoles(p.userId).catch((err: unknown) => {
        // an engine that will not show the user their own roles has not made them SuperUser
        if (isAppError(err, 'ENGINE_NOT_FOUND') || (isAppError(err, 'ENGINE_HTTP_ERROR') && err.details?.['status'] === 403)) return [];
        throw this.mapAuth(p, err);
      });
      return roles.some((r) => r.id === SUPER_USER_ROLE_ID);
    });
  }

  /** FORBIDDEN unless the caller is a backup admin. */
  async requireBackupAdmin(p: Principal, purpose: string): Promise<void> {
    if (await this.isBackupAdmin(p)) return;
    throw new AppError('FORBIDDEN', `only a backup admin (an engine SuperUser, or a user or group in auth.backupAdmins) may ${purpose}`, { details: { required: 'backup admin' } });
  }

  /** The caller's engine groups (+ Everyone), with their names. */
  groupsOf(p: Principal): Promise<Array<{ id: string; name: string }>> {
    return this.groups.load(p.tokenKey, this.opts.cacheMs, () =>
      p.engine.listUserGroups(p.userId).catch((err: unknown) => {
        throw this.mapAuth(p, err);
      }),
    );
  }

  private mapAuth(p: Principal, err: unknown): unknown {
    return this.opts.auth.tokenRefused(p, err);
  }
}
