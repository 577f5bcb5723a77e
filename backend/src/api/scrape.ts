import { createHash, timingSafeEqual } from 'crypto';
import type { Request } from 'express';
import { AppError } from '../errors';
import type { Authenticator } from './auth';
import { bearerToken } from './middleware';

/**
 * Who may read the service's own state outside `/api/v1`'s user routes — `/metrics` and the
 * details of `/health`: a scraper with the configured token, or a portal user (for /health any,
 * for /metrics a backup admin: the figures name every policy). The token is compared in
 * constant time; a wrong one is refused like a wrong SSO token (401).
 */
export class ScrapeAccess {
  private readonly expected: Buffer | undefined;

  constructor(
    token: string | undefined,
    private readonly auth: Authenticator,
    /** Whether a portal user may read everything (backup admins): for `/metrics`. */
    private readonly isAdmin: (tokenHeader: string) => Promise<boolean>,
  ) {
    this.expected = token === undefined ? undefined : digest(token);
  }

  /** false without an Authorization header; AUTH_INVALID / FORBIDDEN for a caller who shows
   *  one that does not qualify. */
  async allows(req: Request, who: 'any-user' | 'admin'): Promise<boolean> {
    const header = req.headers.authorization;
    if (header === undefined) return false;
    const token = bearerToken(header);
    if (this.expected && timingSafeEqual(digest(token), this.expected)) return true;
    if (who === 'any-user') {
      await this.auth.authenticate(token);
      return true;
    }
    if (await this.isAdmin(token)) return true;
    throw new AppError('FORBIDDEN', 'the metrics are for backup admins (engine SuperUser or auth.backupAdmins) and for the configured scrape token', { details: { required: 'backup admin' } });
  }

  /** For `/metrics`: the header is required. */
  async require(req: Request): Promise<void> {
    if (!(await this.allows(req, 'admin'))) throw new AppError('AUTH_REQUIRED', 'send "Authorization: Bearer <scrape token or engine SSO token>" for the metrics');
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
