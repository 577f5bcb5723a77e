import { raceAbort, withTimeout } from '../util/abort';
import type { EngineTransport } from './http';
import { passwordGrant, revokeToken } from './sso';

/**
 * Where a request's bearer token comes from. The service account logs in by password grant and
 * logs in again when the engine answers 401 (SSO tokens are not refreshable, reference §1.2); a
 * portal user's token is handed through as it is and can never be renewed by us.
 */
export type EngineAuth = { kind: 'password'; user: string; password: string } | { kind: 'bearer'; token: string };

export interface TokenSource {
  /** Names the caller in messages (the user, or "the portal user"); never a secret. */
  readonly who: string;
  readonly canRenew: boolean;
  token(signal: AbortSignal): Promise<string>;
  /** A fresh token after `stale` was refused; shared by concurrent callers. */
  renew(stale: string, signal: AbortSignal): Promise<string>;
  close(signal: AbortSignal): Promise<void>;
}

export function tokenSource(auth: EngineAuth, transport: EngineTransport, baseUrl: string, loginTimeoutMs: number): TokenSource {
  return auth.kind === 'password' ? new ServiceAccountTokens(auth, transport, baseUrl, loginTimeoutMs) : new HandedToken(auth.token);
}

class HandedToken implements TokenSource {
  readonly who = 'the portal user';
  readonly canRenew = false;

  constructor(private readonly value: string) {}

  token(): Promise<string> {
    return Promise.resolve(this.value);
  }

  renew(): Promise<string> {
    return Promise.resolve(this.value);
  }

  /** The user's WebAdmin token is theirs: never revoked here. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class ServiceAccountTokens implements TokenSource {
  readonly canRenew = true;
  readonly who: string;
  private current: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly creds: { user: string; password: string },
    private readonly transport: EngineTransport,
    private readonly baseUrl: string,
    private readonly loginTimeoutMs: number,
  ) {
    this.who = creds.user;
  }

  token(signal: AbortSignal): Promise<string> {
    if (this.current !== undefined) return Promise.resolve(this.current);
    return this.login(signal);
  }

  renew(stale: string, signal: AbortSignal): Promise<string> {
    if (this.current !== undefined && this.current !== stale) return Promise.resolve(this.current);
    this.current = undefined;
    return this.login(signal);
  }

  async close(signal: AbortSignal): Promise<void> {
    const t = this.current;
    this.current = undefined;
    if (t !== undefined) await revokeToken(this.transport, this.baseUrl, t, signal);
  }

  /** One login in flight at a time, shared by every caller that needs it, with its own
   *  deadline; a caller's abort or timeout only stops that caller's wait. */
  private login(signal: AbortSignal): Promise<string> {
    this.pending ??= withTimeout(
      `engine login of ${this.creds.user}`,
      this.loginTimeoutMs,
      undefined,
      (s) => passwordGrant(this.transport, this.baseUrl, this.creds, s),
      { timeout: 'ENGINE_TIMEOUT', aborted: 'ENGINE_ABORTED' },
    )
      .then((t) => {
        this.current = t.accessToken;
        return t.accessToken;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return raceAbort(this.pending, signal);
  }
}
