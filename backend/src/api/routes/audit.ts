import { Router } from 'express';
import type { AuditList } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { parseAuditQuery } from '../validate';

/**
 * The audit log: the repository's records (deletions, prunes, lock changes, CLI unlocks, damage
 * marks, quarantined chunks, gc) and the service's (refused logins, restores, policy changes and
 * runs by hand, refused actions), newest first, from the catalog's copy of both files. Backup
 * admins only (an engine SuperUser, or a user or group in auth.backupAdmins): it names every VM
 * and what every user did.
 */
export function auditRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get(
    '/audit',
    route(async (req, res) => {
      // who asks first: a caller who may not read the log learns nothing from its validation
      await deps.permits.requireBackupAdmin(principalOf(res), 'read the audit log');
      const body: AuditList = await deps.audit.list(parseAuditQuery(req.query));
      res.json(body);
    }),
  );
  return r;
}
