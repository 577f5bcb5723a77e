import { createHash } from 'crypto';
import { AppError, isAppError } from '../errors';
import { SUPER_USER_ROLE_ID, type EngineClient, type Vm } from '../engine';
import { TtlCache } from './ttlCache';

/** A portal user, as the engine knows them from the SSO token the plugin sent. */
export interface Principal {
  userId: string;
  userName: string;
  /** SHA-256 of the token: the key of everything cached for this caller; the token itself is
   *  kept only inside `engine`, never logged nor stored. */
  tokenKey: string;
  /** The engine as this user sees it: bearer token, `Filter: true` unless the user is an engine admin. */
  engine: EngineClient;
}

export interface AuthenticatorOptions {
  /** The engine as the holder of `token` sees it: bearer token, `Filter: true` (main.ts builds it
   *  from the engine settings; tests point it elsewhere). */
  engineFor(token: string): EngineClient;
  /** How long an identity (and a permission answer) is reused. */
  cacheMs: number;
  /** How long the list of VMs a user may see is reused. */
  vmListMs?: number;
}

/**
 * Who is calling, and what they may see, decided by the engine itself (DESIGN.md §5): the
 * token is the user's WebAdmin SSO token, `GET /api` names its user, and a VM the user has no
 * permission on answers 404 under `Filter: true`. Answers are cached per token hash for a short
 * time. The token is never revoked here: it is the user's portal session.
 */
export class Authenticator {
  private readonly principals: TtlCache<Principal>;
  private readonly refused = new TtlCache<AppError>(10_000);
  private readonly vmAccess = new TtlCache<Vm | null>(50_000);
  private readonly vmLists = new TtlCache<Vm[]>(5_000);
  /** Per engine user id: whether they hold SuperUser on the system. */
  private readonly superUsers = new TtlCache<boolean>(5_000);
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: AuthenticatorOptions) {
    this.principals = new TtlCache<Principal>(5_000, (p) => void p.engine.close().catch(() => undefined));
  }

  async authenticate(token: string): Promise<Principal> {
    if (token.length === 0 || token.length > 4096 || /[\s\u0000-\u001f]/.test(token)) {
      throw new AppError('AUTH_INVALID', 'the bearer token is malformed');
    }
    const key = createHash('sha256').update(token).digest('hex');
    const known = this.principals.get(key);
    if (known) return known;
    const refused = this.refused.get(key);
    if (refused) throw refused;
    return this.once(`who:${key}`, async () => {
      const engine = this.opts.engineFor(token);
      try {
        // A user without rights on their own user entity still gets their id from /api.
        const info = await engine.getApiInfo();
        const userId = info.authenticatedUserId;
        if (!userId) throw new AppError('ENGINE_PROTOCOL_ERROR', 'the engine did not name the user of the token');
        // an engine admin reads unfiltered, as WebAdmin and the VM Portal do: filtered, the engine
        // shows only what USER-type roles make visible, so a SuperUser would see no VM at all
        // (reference ovirt-permissions.md §1, §5)
        if (await engine.isEngineAdmin()) engine.connection.filter = false;
        const user = await engine.getUser(userId).catch(() => undefined);
        const principal: Principal = { userId, userName: user?.userName ?? userId, tokenKey: key, engine };
        this.principals.set(key, principal, this.opts.cacheMs);
        return principal;
      } catch (err) {
        await engine.close().catch(() => undefined);
        if (isAppError(err, 'ENGINE_AUTH_FAILED')) {
          const e = new AppError('AUTH_INVALID', 'the engine does not accept this token (expired or logged out): log in to the portal again', { cause: err });
          this.refused.set(key, e, 5_000);
          throw e;
        }
        throw err;
      }
    });
  }

  /** The VM if the user may see it; null otherwise (callers answer 404 either way). */
  async visibleVm(p: Principal, vmId: string): Promise<Vm | null> {
    const key = `${p.tokenKey}:${vmId}`;
    const cached = this.vmAccess.get(key);
    if (cached !== undefined) return cached;
    return this.once(`vm:${key}`, async () => {
      const vm = await p.engine.getVm(vmId).catch((err: unknown) => {
        if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
        throw this.mapAuth(p, err);
      });
      this.vmAccess.set(key, vm, this.opts.cacheMs);
      return vm;
    });
  }

  /** Every VM the user may see, with its disks. */
  async visibleVms(p: Principal): Promise<Vm[]> {
    const cached = this.vmLists.get(p.tokenKey);
    if (cached) return cached;
    return this.once(`vms:${p.tokenKey}`, async () => {
      const vms = await p.engine.listVms({ withDisks: true }).catch((err: unknown) => {
        throw this.mapAuth(p, err);
      });
      this.vmLists.set(p.tokenKey, vms, this.opts.vmListMs ?? 5_000);
      for (const vm of vms) this.vmAccess.set(`${p.tokenKey}:${vm.id}`, vm, this.opts.cacheMs);
      return vms;
    });
  }

  /**
   * FORBIDDEN unless the caller holds the SuperUser role on the whole system
   * (ovirt-ui-plugin.md §5.9 item 3): for what names every VM and every user's actions, such as
   * the audit log. Not "any administrative role": every WebAdmin user holds one (the portal
   * admits no one else), so that would admit every portal user. The answer is kept per user as
   * long as an identity.
   */
  async requireSuperUser(p: Principal, purpose: string): Promise<void> {
    if (await this.isSuperUser(p)) return;
    throw new AppError('FORBIDDEN', `only an engine SuperUser may ${purpose}: ${p.userName} holds no SuperUser role on the system`, {
      details: { requiredRole: 'SuperUser' },
    });
  }

  private async isSuperUser(p: Principal): Promise<boolean> {
    const cached = this.superUsers.get(p.userId);
    if (cached !== undefined) return cached;
    return this.once(`su:${p.userId}`, async () => {
      const roles = await p.engine.listSystemRoles(p.userId).catch((err: unknown) => {
        // an engine that will not show the user their own roles has not made them SuperUser
        if (isAppError(err, 'ENGINE_NOT_FOUND') || (isAppError(err, 'ENGINE_HTTP_ERROR') && err.details?.['status'] === 403)) return [];
        throw this.mapAuth(p, err);
      });
      const yes = roles.some((r) => r.id === SUPER_USER_ROLE_ID);
      this.superUsers.set(p.userId, yes, this.opts.cacheMs);
      return yes;
    });
  }

  /** Forgets a VM list after a change the user should see at once (a new VM, a backup). */
  forgetVmLists(): void {
    this.vmLists.clear();
  }

  close(): void {
    this.principals.clear();
    this.vmLists.clear();
    this.vmAccess.clear();
    this.superUsers.clear();
  }

  /** A token that expires while cached is noticed on the next engine call. */
  private mapAuth(p: Principal, err: unknown): unknown {
    if (!isAppError(err, 'ENGINE_AUTH_FAILED')) return err;
    this.principals.delete(p.tokenKey);
    return new AppError('AUTH_INVALID', 'the engine no longer accepts this token: log in to the portal again', { cause: err });
  }

  /** Concurrent requests of one caller share one engine round trip. */
  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.pending.get(key) as Promise<T> | undefined;
    if (running) return running;
    const p = fn().finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }
}
