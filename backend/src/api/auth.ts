import { createHash } from 'crypto';
import { AppError, isAppError } from '../errors';
import type { EngineClient, Vm } from '../engine';
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
  /** How long an identity (and a VM's visibility) is reused. */
  cacheMs: number;
  /** How long the list of VMs a user may see is reused. */
  vmListMs?: number;
  /** How long a token the engine refused is refused without asking it again. */
  refusedMs?: number;
}

/** A flood of made-up tokens costs the engine one question per token per this period. */
const REFUSED_MS = 60_000;

/**
 * Who is calling, and what they may see, decided by the engine itself: the token is the user's
 * WebAdmin SSO token, `GET /api` names its user, and a VM the user may not see answers 404.
 * Answers are cached per token hash for a short time; so are refusals, so a flood of bogus
 * tokens cannot turn into a flood of engine requests. The token is never revoked here: it is
 * the user's portal session. What the user may *do* is Permits' question (permits.ts).
 */
export class Authenticator {
  private readonly principals: TtlCache<Principal>;
  private readonly refused = new TtlCache<AppError>(50_000);
  private readonly vmAccess = new TtlCache<Vm | null>(50_000);
  private readonly vmLists = new TtlCache<Vm[]>(5_000);

  constructor(private readonly opts: AuthenticatorOptions) {
    this.principals = new TtlCache<Principal>(5_000, (p) => void p.engine.close().catch(() => undefined));
  }

  async authenticate(token: string): Promise<Principal> {
    if (token.length === 0 || token.length > 4096 || /[\s\u0000-\u001f]/.test(token)) {
      throw new AppError('AUTH_INVALID', 'the bearer token is malformed');
    }
    const key = tokenKeyOf(token);
    const refused = this.refused.get(key);
    if (refused) throw refused;
    return this.principals.load(key, this.opts.cacheMs, async () => {
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
        return { userId, userName: user?.userName ?? userId, tokenKey: key, engine };
      } catch (err) {
        await engine.close().catch(() => undefined);
        if (isAppError(err, 'ENGINE_AUTH_FAILED')) {
          const e = new AppError('AUTH_INVALID', 'the engine does not accept this token (expired or logged out): log in to the portal again', { cause: err });
          this.refused.set(key, e, this.opts.refusedMs ?? REFUSED_MS);
          throw e;
        }
        throw err;
      }
    });
  }

  /** The VM if the user may see it; null otherwise (callers answer 404 either way). */
  async visibleVm(p: Principal, vmId: string): Promise<Vm | null> {
    return this.vmAccess.load(`${p.tokenKey}:${vmId}`, this.opts.cacheMs, () =>
      p.engine.getVm(vmId).catch((err: unknown) => {
        if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
        throw this.tokenRefused(p, err);
      }),
    );
  }

  /** Every VM the user may see, with its disks. */
  async visibleVms(p: Principal): Promise<Vm[]> {
    const vms = await this.vmLists.load(p.tokenKey, this.opts.vmListMs ?? 5_000, () =>
      p.engine.listVms({ withDisks: true }).catch((err: unknown) => {
        throw this.tokenRefused(p, err);
      }),
    );
    for (const vm of vms) this.vmAccess.set(`${p.tokenKey}:${vm.id}`, vm, this.opts.cacheMs);
    return vms;
  }

  /** Forgets a VM list after a change the user should see at once (a new VM, a backup). */
  forgetVmLists(): void {
    this.vmLists.clear();
  }

  /** An engine error met with the user's token: a token the engine stopped accepting (it expired
   *  while cached) becomes AUTH_INVALID and the identity is forgotten; others stay as they are. */
  tokenRefused(p: Principal, err: unknown): unknown {
    if (!isAppError(err, 'ENGINE_AUTH_FAILED')) return err;
    this.principals.delete(p.tokenKey);
    return new AppError('AUTH_INVALID', 'the engine no longer accepts this token: log in to the portal again', { cause: err });
  }

  close(): void {
    this.principals.clear();
    this.vmLists.clear();
    this.vmAccess.clear();
  }
}

/** The key everything about a token is cached and logged under: its SHA-256, never the token. */
export function tokenKeyOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
