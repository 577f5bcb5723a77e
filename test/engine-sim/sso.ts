import { randomBytes } from 'crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { isAdmin } from './access';
import type { SimState, SimUserRecord } from './state';

/**
 * The engine's SSO (reference §1.2) as OAuthTokenServlet / SsoService answer it:
 * - success: `{access_token, scope, exp, token_type: "bearer"}`; `exp` is the session's validTo as
 *   a string (Long.MAX_VALUE for the internal domain, whose auth records carry no expiry);
 * - errors: HTTP 400 and, when the requested scope is the REST API's (`ovirt-app-api`),
 *   `{error_code, error}`; otherwise the OAuth shape `{error, error_description}`;
 * - the Accept header must be exactly `application/json` (checked after the password);
 * - sessions end after 30 minutes without use (the engine's UserSessionTimeOutInterval).
 */

const LONG_MAX = '9223372036854775807';
const API_SCOPE = 'ovirt-app-api';
const PROFILES = ['internal'];

interface Token {
  token: string;
  userId: string;
  scope: string[];
  validTo: number; // ms; Infinity = none
  lastUsed: number;
}

export class TokenStore {
  private readonly tokens = new Map<string, Token>();
  /** lifetime of new tokens; undefined = no expiry except idleness (the engine's default) */
  ttlMs: number | undefined;
  idleTimeoutMs = 30 * 60_000;

  constructor(private readonly state: SimState) {}

  issue(user: SimUserRecord, scope: string[]): Token {
    const t: Token = {
      token: randomBytes(48).toString('base64url'),
      userId: user.id,
      scope,
      validTo: this.ttlMs === undefined ? Infinity : Date.now() + this.ttlMs,
      lastUsed: Date.now(),
    };
    this.tokens.set(t.token, t);
    return t;
  }

  /** The user of a live API token, touching the session. */
  use(token: string): SimUserRecord | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    const now = Date.now();
    if (now >= t.validTo || now - t.lastUsed > this.idleTimeoutMs || !t.scope.includes(API_SCOPE)) {
      this.tokens.delete(token);
      return undefined;
    }
    t.lastUsed = now;
    return this.state.user(t.userId);
  }

  revoke(token: string): void {
    this.tokens.delete(token);
  }

  /** Users with a live session (engine_sessions): audit-log filtering looks at their permissions. */
  liveUserIds(): Set<string> {
    const now = Date.now();
    return new Set([...this.tokens.values()].filter((t) => now < t.validTo && now - t.lastUsed <= this.idleTimeoutMs).map((t) => t.userId));
  }

  /** Whether the user is an admin, as a new engine session would record it. */
  isAdmin(user: SimUserRecord): boolean {
    return isAdmin(this.state, user);
  }

  /** Test hook: every token (or every token of one user) stops working now. */
  expire(userName?: string): void {
    for (const [k, t] of this.tokens) {
      if (userName === undefined || this.state.user(t.userId)?.userName === userName) this.tokens.delete(k);
    }
  }

  /** username@profile + password, as the internal authn would check them. */
  check(userName: string, password: string): SimUserRecord | undefined {
    const u = this.state.userByName(userName);
    return u && u.password === password ? u : undefined;
  }
}

class OAuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function ssoRouter(tokens: TokenStore): Router {
  const r = express.Router();
  const form = express.urlencoded({ extended: false });

  r.post('/sso/oauth/token', form, (req: Request, res: Response) => {
    const p = (name: string): string | undefined => {
      const b = (req.body as Record<string, unknown> | undefined)?.[name];
      if (typeof b === 'string') return b;
      const q = req.query[name];
      return typeof q === 'string' ? q : undefined;
    };
    const scopeParam = p('scope') ?? '';
    const scopes = scopeParam.trim() === '' ? [] : scopeParam.trim().split(/\s+/);
    try {
      // getRequestParameter(request, "grant_type", "grant_type"): a missing grant type is "grant_type"
      const grant = p('grant_type') ?? 'grant_type';
      if (grant !== 'password') {
        throw new OAuthError('unsupported_grant_type', 'The authorization grant type is not supported by the authorization server.');
      }
      const userParam = p('username');
      if (userParam === undefined) throw new OAuthError('invalid_request', "Missing parameter: 'username'");
      const password = p('password');
      if (password === undefined) throw new OAuthError('invalid_request', "Missing parameter: 'password'");
      const at = userParam.lastIndexOf('@');
      const name = at === -1 ? userParam : userParam.slice(0, at);
      const profile = at === -1 ? undefined : userParam.slice(at + 1);
      const denied = (why: string): OAuthError =>
        new OAuthError('access_denied', `Cannot authenticate user '${name}@${profile ?? 'N/A'}': ${why}.`);
      if (name === '') throw denied('No user name found in credentials.');
      if (profile === undefined || !PROFILES.includes(profile)) throw denied('No valid profile found in credentials.');
      const user = tokens.check(userParam, password);
      if (!user) throw denied('Unable to log in. Verify your login information or contact the system administrator.');
      if (req.get('accept') !== 'application/json') throw new OAuthError('invalid_request', "Missing parameter: 'Accept Header'");
      // the engine adds the scope's dependencies (sorted, as a TreeSet joins them)
      const granted = [...new Set([...scopes, ...(scopes.includes(API_SCOPE) ? ['ovirt-ext=token-info:validate'] : [])])].sort();
      const t = tokens.issue(user, granted);
      res
        .status(200)
        .type('application/json')
        .send(
          JSON.stringify({
            access_token: t.token,
            scope: granted.join(' '),
            exp: Number.isFinite(t.validTo) ? String(t.validTo) : LONG_MAX,
            token_type: 'bearer',
          }),
        );
    } catch (err) {
      const e = err instanceof OAuthError ? err : new OAuthError('server_error', (err as Error).message);
      const restApi = scopes.includes(API_SCOPE) && !scopes.includes('ovirt-app-admin') && !scopes.includes('ovirt-app-portal');
      const payload = restApi ? { error_code: e.code, error: e.message } : { error: e.code, error_description: e.message };
      res.status(400).type('application/json').send(JSON.stringify(payload));
    }
  });

  // What the Python SDK calls on close (reference §1.2).
  r.post('/services/sso-logout', form, (req: Request, res: Response) => {
    const b = req.body as Record<string, unknown> | undefined;
    const token = typeof b?.['token'] === 'string' ? b['token'] : typeof req.query['token'] === 'string' ? req.query['token'] : undefined;
    if (token) tokens.revoke(token);
    res.status(200).type('application/json').send('{}');
  });

  return r;
}

/**
 * The API's authentication: `Authorization: Bearer <token>` (or deprecated Basic credentials).
 * Anything else is EnforceAuthFilter's bare 401 (the container's HTML error page).
 */
export function apiAuth(tokens: TokenStore): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const h = req.get('authorization') ?? '';
    let user: SimUserRecord | undefined;
    if (/^bearer /i.test(h)) {
      user = tokens.use(h.slice(7).trim());
    } else if (/^basic /i.test(h)) {
      const [name, ...rest] = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8').split(':');
      user = name === undefined ? undefined : tokens.check(name, rest.join(':'));
    }
    if (!user) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Basic realm="RESTAPI"')
        .type('text/html')
        .send('<html><head><title>Error</title></head><body>Unauthorized</body></html>');
      return;
    }
    res.locals['user'] = user;
    // the session's admin flag (CreateUserSessionCommand); read per request, so grants count at once
    res.locals['admin'] = tokens.isAdmin(user);
    next();
  };
}
