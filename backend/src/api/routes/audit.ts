import { Router } from 'express';
import { AppError } from '../../errors';
import { repositoryEntry } from '../auditLog';
import type { AuditList } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The audit log: the repository's records (deletions, prunes, lock changes, unlocks, damage
 * marks, quarantined chunks, gc) and the service's refused logins, newest first. Any
 * authenticated portal user may read it (it names points and VM ids, never data or tokens),
 * except the records about an engine VM they may not see; limiting it to engine SuperUsers would
 * be better and needs a permission check on the engine's system object that the service does
 * not make yet.
 */
export function auditRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.get(
    '/audit',
    route(async (req, res) => {
      const { since, limit } = parseAuditQuery(req.query);
      const [repo, service] = await Promise.all([deps.repository.auditLog(since ? { since } : {}), deps.serviceAudit ? deps.serviceAudit.read(since ? { since } : {}) : Promise.resolve([])]);
      const visible = new Set((await deps.auth.visibleVms(principalOf(res))).map((v) => v.id));
      // a record about an engine VM (its key is the VM's id) only for those who may see the VM
      const sees = (vm: unknown): boolean => typeof vm !== 'string' || !UUID.test(vm) || visible.has(vm);
      const entries = [...repo.map(repositoryEntry), ...service].filter((e) => sees(e.vmKey) && (!Array.isArray(e.details?.['vmIds']) || e.details['vmIds'].every(sees)));
      // stable: records of one write share a time and keep their order, reversed
      const indexed = entries.map((e, i) => ({ e, i, t: Date.parse(e.time) }));
      indexed.sort((a, b) => b.t - a.t || b.i - a.i);
      const body: AuditList = { entries: indexed.slice(0, limit).map((x) => x.e) };
      res.json(body);
    }),
  );
  return r;
}

function parseAuditQuery(q: Record<string, unknown>): { since?: Date; limit: number } {
  const unknown = Object.keys(q).filter((k) => k !== 'since' && k !== 'limit');
  if (unknown.length > 0) throw new AppError('BAD_REQUEST', `query: unknown field ${unknown.map((k) => `"${k}"`).join(', ')}`);
  let since: Date | undefined;
  if (q['since'] !== undefined) {
    since = typeof q['since'] === 'string' ? new Date(q['since']) : undefined;
    if (!since || Number.isNaN(since.getTime())) throw new AppError('BAD_REQUEST', 'query.since: must be an ISO 8601 date-time');
  }
  const limit = q['limit'] === undefined ? 200 : Number(q['limit']);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AppError('BAD_REQUEST', 'query.limit: must be a whole number from 1 to 1000');
  return { ...(since ? { since } : {}), limit };
}
