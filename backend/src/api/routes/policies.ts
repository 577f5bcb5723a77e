import { Router, type Response } from 'express';
import { AppError } from '../../errors';
import { previewRetention } from '../../schedule';
import type { PolicyInput, PolicyList, PolicyRunList, PolicyRunResponse, PolicySelection, RetentionPreview } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { parsePolicyInput, parseRetentionPreview } from '../validate';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Backup policies. Who may manage them: any authenticated portal user who may see every VM the
 * policy selects now (resolved by the service account, compared with what the engine lets the
 * user see). A policy selecting a VM the user cannot see does not exist for that user (404, and
 * absent from the list); creating or changing one so that it would select such a VM is refused
 * (400 naming the selection). The engine stays the only judge of permissions: no role of our own.
 */
export function policiesRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.get(
    '/policies',
    route(async (_req, res) => {
      const visible = await visibleIds(deps, res);
      const out: PolicyList['policies'] = [];
      for (const p of deps.policies.list()) {
        const selected = await deps.policies.selectedVmIds(p.selection).catch(() => [] as string[]);
        if (selected.every((id) => visible.has(id))) out.push(p);
      }
      const body: PolicyList = { policies: out };
      res.json(body);
    }),
  );

  r.get(
    '/policy-runs',
    route(async (req, res) => {
      const raw = req.query['limit'];
      const limit = raw === undefined ? 50 : Number(raw);
      if (Object.keys(req.query).some((k) => k !== 'limit')) throw new AppError('BAD_REQUEST', `query: unknown field ${Object.keys(req.query).filter((k) => k !== 'limit').map((k) => `"${k}"`).join(', ')}`);
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new AppError('BAD_REQUEST', 'query.limit: must be a whole number from 1 to 200');
      const visible = await visibleIds(deps, res);
      const body: PolicyRunList = { runs: deps.policies.recentRuns(limit).filter((run) => run.vms.every((v) => visible.has(v.vmId))) };
      res.json(body);
    }),
  );

  r.post(
    '/policies',
    route(async (req, res) => {
      const input = parsePolicyInput(req.body);
      const selected = await checkedSelection(deps, res, input);
      const user = principalOf(res);
      const body = await deps.policies.create(input, { id: user.userId, name: user.userName }, selected);
      deps.serviceAudit?.record('policy-create', { actor: user.userName, details: { policyId: body.policy.id, name: body.policy.name, vmIds: selected, lockDays: input.lockDays, retention: input.retention } });
      res.status(201).json(body);
    }),
  );

  // the dry-run prune a run's retention makes, for the form's values (saved or not)
  r.post(
    '/policies/retention-preview',
    route(async (req, res) => {
      const input = parseRetentionPreview(req.body);
      deps.policies.checkTimeZone(input.timeZone);
      await deps.policies.checkSelection(input.selection);
      const visibleVms = await deps.auth.visibleVms(principalOf(res));
      const selected = await visibleSelection(deps, input.selection, new Set(visibleVms.map((v) => v.id)));
      const names = new Map(visibleVms.map((v) => [v.id, v.name]));
      const body: RetentionPreview = await previewRetention(
        deps.repository,
        selected.map((id) => ({ id, name: names.get(id) ?? id })),
        input.retention,
        input.timeZone,
        new Date(),
      );
      res.json(body);
    }),
  );

  r.get(
    '/policies/:policyId',
    route(async (req, res) => {
      const id = await visiblePolicy(deps, res, req.params['policyId']);
      res.json(deps.policies.detail(id));
    }),
  );

  r.put(
    '/policies/:policyId',
    route(async (req, res) => {
      const id = await visiblePolicy(deps, res, req.params['policyId']);
      const input = parsePolicyInput(req.body);
      const selected = await checkedSelection(deps, res, input);
      const user = principalOf(res);
      const before = deps.policies.get(id);
      const body = await deps.policies.update(id, input, { id: user.userId, name: user.userName }, selected);
      deps.serviceAudit?.record('policy-update', { actor: user.userName, details: { policyId: id, name: body.policy.name, vmIds: selected, lockDays: input.lockDays, retention: input.retention, ...(before ? { before: { name: before.name, lockDays: before.lockDays, retention: before.retention, enabled: before.enabled } } : {}) } });
      res.json(body);
    }),
  );

  r.delete(
    '/policies/:policyId',
    route(async (req, res) => {
      const id = await visiblePolicy(deps, res, req.params['policyId']);
      const user = principalOf(res);
      const before = deps.policies.get(id);
      deps.policies.remove(id, { id: user.userId, name: user.userName });
      deps.serviceAudit?.record('policy-delete', { actor: user.userName, details: { policyId: id, name: before?.name ?? null, vmIds: await deps.policies.selectedVmIds(before?.selection ?? { vmIds: [] }).catch(() => []) } });
      res.status(204).end();
    }),
  );

  r.post(
    '/policies/:policyId/run',
    route(async (req, res) => {
      const id = await visiblePolicy(deps, res, req.params['policyId']);
      const user = principalOf(res);
      const body: PolicyRunResponse = { run: deps.policies.runNow(id, { id: user.userId, name: user.userName }) };
      const policy = deps.policies.get(id);
      const vmIds = policy ? await deps.policies.selectedVmIds(policy.selection).catch(() => [] as string[]) : [];
      deps.serviceAudit?.record('policy-run', { actor: user.userName, details: { policyId: id, runId: body.run.id, name: body.run.policyName, vmIds } });
      res.status(202).json(body);
    }),
  );

  return r;
}

async function visibleIds(deps: ApiDeps, res: Response): Promise<Set<string>> {
  return new Set((await deps.auth.visibleVms(principalOf(res))).map((v) => v.id));
}

/** The policy's id if it exists and the caller may see every VM it selects; 404 otherwise. */
async function visiblePolicy(deps: ApiDeps, res: Response, raw: unknown): Promise<string> {
  if (typeof raw !== 'string' || !UUID.test(raw)) throw new AppError('BAD_REQUEST', `policy id ${JSON.stringify(raw)} is not a policy id (a UUID)`);
  const id = raw.toLowerCase();
  const p = deps.policies.get(id);
  if (!p) throw new AppError('NOT_FOUND', `policy ${id} not found`);
  const selected = await deps.policies.selectedVmIds(p.selection).catch(() => [] as string[]);
  const visible = await visibleIds(deps, res);
  if (!selected.every((v) => visible.has(v))) throw new AppError('NOT_FOUND', `policy ${id} not found`);
  return id;
}

/** Checks a definition (cron, zone, tag, search) and that the caller may see all it selects. */
async function checkedSelection(deps: ApiDeps, res: Response, input: PolicyInput): Promise<string[]> {
  await deps.policies.check(input);
  return visibleSelection(deps, input.selection, await visibleIds(deps, res));
}

/** The VM ids a (checked) selection means now; 400 when it means a VM the caller may not see. */
async function visibleSelection(deps: ApiDeps, sel: PolicySelection, visible: ReadonlySet<string>): Promise<string[]> {
  if ('vmIds' in sel) {
    const ids = sel.vmIds.map((v) => v.toLowerCase());
    const i = ids.findIndex((id) => !visible.has(id));
    if (i >= 0) throw new AppError('BAD_REQUEST', `request body.selection.vmIds.${i}: vm ${ids[i]} not found`);
    sel.vmIds = ids;
    return ids;
  }
  const selected = await deps.policies.selectedVmIds(sel);
  const hidden = selected.filter((id) => !visible.has(id)).length;
  if (hidden > 0) {
    throw new AppError('BAD_REQUEST', `request body.selection.${'tag' in sel ? 'tag' : 'search'}: selects ${hidden} vm${hidden === 1 ? '' : 's'} you may not see; only vms you may see can be put in a policy`);
  }
  return selected;
}
