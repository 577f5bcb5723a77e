import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError, isAppError } from '../errors';
import { tokenKeyOf, type Authenticator, type Principal } from './auth';

/** Express 4 does not catch rejected promises: every async handler goes through this. */
export function route(fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler {
  return (req, res, next) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };
}

/**
 * Headers that make a JSON API inert in a browser: nothing here is a page, may be framed,
 * sniffed as another type, cached, or leak the portal URL it was called from.
 */
export function securityHeaders(tls: boolean): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-site');
    res.setHeader('Cache-Control', 'no-store');
    if (tls) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
    next();
  };
}

/**
 * CORS for the configured engine origins only (the plugin runs in WebAdmin's origin). Other
 * origins get no CORS headers, so browsers refuse to hand them the answers; preflights from
 * them are refused outright.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    res.vary('Origin');
    if (origin !== undefined && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'Content-Type, Content-Disposition, X-File-Kind');
    }
    if (req.method === 'OPTIONS') {
      if (origin === undefined || !allowed.has(origin)) {
        res.status(403).json({ error: { code: 'CORS_REFUSED', message: `origin ${origin ?? '(none)'} is not allowed to call this service` } });
        return;
      }
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** `Authorization: Bearer <engine SSO token>` → res.locals.principal, or 401. A token refused
 *  (AUTH_INVALID) is reported to `onRefused` by its SHA-256 (the audit log's login failures). */
export function requireUser(auth: Authenticator, onRefused?: (tokenKey: string, err: AppError, req: Request) => void): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const token = bearerToken(req.headers.authorization);
    auth.authenticate(token).then(
      (p) => {
        res.locals['principal'] = p;
        next();
      },
      (err: unknown) => {
        if (onRefused && isAppError(err, 'AUTH_INVALID')) onRefused(tokenKeyOf(token), err, req);
        next(err);
      },
    );
  };
}

export function principalOf(res: Response): Principal {
  const p = res.locals['principal'] as Principal | undefined;
  if (!p) throw new AppError('AUTH_REQUIRED', 'this request needs an engine SSO token');
  return p;
}

export function bearerToken(header: string | undefined): string {
  if (!header) throw new AppError('AUTH_REQUIRED', 'missing Authorization header: send "Authorization: Bearer <engine SSO token>"');
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m?.[1]) throw new AppError('AUTH_REQUIRED', 'the Authorization header must be "Bearer <engine SSO token>"');
  return m[1];
}
