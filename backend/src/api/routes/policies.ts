import { Router, type Response } from 'express';
import { AppError } from '../../errors';
import { EVERYONE_GROUP_ID } from '../../engine';
import { previewRetention, type PolicyInput, type PolicyOwner, type PolicySelection, type RetentionRules, type StoredPolicy } from '../../schedule';
import type { PolicyList, PolicyRunList, PolicyRunResponse, RetentionPreview } from '../contract';
import type { ApiDeps } from '../deps';
import { NEEDS } from '../access';
import { principalOf, route } from '../middleware';
import { parsePolicyInput, parseRetentionPreview } from '../validate';
import { visibleIds } from '../visibility';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Backup policies. Who may manage one (README, "Who may do what"):
 * - a policy naming VMs by id, keeping every point and adding no lock of its own: anyone holding
 *   `backup_disk` on every VM it names — checked when it is saved, run by hand or deleted, and at
 *   each scheduled run with the owner's last-known rights (schedule/owner.ts);
 * - a selection by engine tag or search, retention rules that delete points, a lock of its own:
 *   backup admins only (a search run by the service account must not become an inventory oracle,
 *   and deleting points is not a VM permit anyone can be granted).
 * A policy selecting a VM the caller may not see does not exist for that caller (404, and absent
 * from the list).
 */
export function policiesRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.get(
    '/policies',
    route(async (_req, res) => {
      const visible = await visibleIds(deps, res);
      const admin = await deps.permits.isBackupAdmin(principalOf(res));
      const out: PolicyList['policies'] = [];
      for (const p of deps.policies.list()) {
        if (admin || (await selectsOnly(deps, p.selection, visible))) out.push(p);
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
      const owner = await ownerOf(deps, res);
      const selected = await mayDefine(deps, res, input);
      const body = await deps.policies.create(input, owner, selected);
      deps.serviceAudit?.record('policy-create', { actor: owner.name, details: { policyId: body.policy.id, name: body.policy.name, vmIds: selected, lockDays: input.lockDays, retention: input.retention } });
      res.status(201).json(body);
    }),
  );

  // the dry-run prune a run's retention makes, for the form's values (saved or not)
  r.post(
    '/policies/retention-preview',
    route(async (req, res) => {
      const input = parseRetentionPreview(req.body);
      if (!('vmIds' in input.selection)) await deps.permits.requireBackupAdmin(principalOf(res), 'select vms by tag or search');
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
      const p = await visiblePolicy(deps, res, req.params['policyId']);
      res.json(deps.policies.detail(p.id));
    }),
  );

  r.put(
    '/policies/:policyId',
    route(async (req, res) => {
      const before = await visiblePolicy(deps, res, req.params['policyId']);
      await mayManage(deps, res, before, 'change');
      const input = parsePolicyInput(req.body);
      const owner = await ownerOf(deps, res);
      const selected = await mayDefine(deps, res, input);
      const body = await deps.policies.update(before.id, input, owner, selected);
      deps.serviceAudit?.record('policy-update', {
        actor: owner.name,
        details: { policyId: before.id, name: body.policy.name, vmIds: selected, lockDays: input.lockDays, retention: input.retention, before: { name: before.name, lockDays: before.lockDays, retention: before.retention, enabled: before.enabled } },
      });
      res.json(body);
    }),
  );

  r.delete(
    '/policies/:policyId',
    route(async (req, res) => {
      const before = await visiblePolicy(deps, res, req.params['policyId']);
      await mayManage(deps, res, before, 'delete');
      const user = principalOf(res);
      deps.policies.remove(before.id, { id: user.userId, name: user.userName });
      deps.serviceAudit?.record('policy-delete', { actor: user.userName, details: { policyId: before.id, name: before.name, vmIds: await deps.policies.selectedVmIds(before.selection).catch(() => []) } });
      res.status(204).end();
    }),
  );

  r.post(
    '/policies/:policyId/run',
    route(async (req, res) => {
      const policy = await visiblePolicy(deps, res, req.params['policyId']);
      await mayManage(deps, res, policy, 'run');
      const user = principalOf(res);
      const body: PolicyRunResponse = { run: deps.policies.runNow(policy.id, { id: user.userId, name: user.userName }) };
      const vmIds = await deps.policies.selectedVmIds(policy.selection).catch(() => [] as string[]);
      deps.serviceAudit?.record('policy-run', { actor: user.userName, details: { policyId: policy.id, runId: body.run.id, name: body.run.policyName, vmIds } });
      res.status(202).json(body);
    }),
  );

  return r;
}

/** The caller as a policy's owner: their id, name and engine groups now. */
async function ownerOf(deps: ApiDeps, res: Response): Promise<PolicyOwner> {
  const user = principalOf(res);
  // Everyone is implied (principalIds adds it when a run checks the owner): not stored
  const groups = (await deps.permits.groupsOf(user)).filter((g) => g.id.toLowerCase() !== EVERYONE_GROUP_ID);
  return { id: user.userId, name: user.userName, groupIds: groups.map((g) => g.id), groupNames: groups.map((g) => g.name) };
}

/** What only backup admins may put in a policy, named; empty when a VM permit suffices. */
function adminParts(p: { selection: PolicySelection; retention: RetentionRules; lockDays: number }): string[] {
  const out: string[] = [];
  if (!('vmIds' in p.selection)) out.push(`select vms by ${'tag' in p.selection ? 'tag' : 'search'}`);
  if (Object.values(p.retention).some((n) => n > 0)) out.push('set retention rules that delete points');
  if (p.lockDays > 0) out.push('set a retention lock of its own');
  return out;
}

/**
 * Checks a definition and returns the VMs it selects now. Who asks comes first: a caller who may
 * not select by tag or search learns nothing from the engine's resolution of one.
 */
async function mayDefine(deps: ApiDeps, res: Response, input: PolicyInput): Promise<string[]> {
  const user = principalOf(res);
  const admin = await deps.permits.isBackupAdmin(user);
  const parts = adminParts(input);
  if (!admin && parts.length > 0) await deps.permits.requireBackupAdmin(user, `${parts.join(', ')} in a policy`);
  await deps.policies.check(input);
  const selected = await visibleSelection(deps, input.selection, await visibleIds(deps, res));
  if (!admin && 'vmIds' in input.selection) await requireBackupOnAll(deps, res, selected, 'put');
  return selected;
}

/** Changing, running or deleting a policy takes what saving it took. */
async function mayManage(deps: ApiDeps, res: Response, p: StoredPolicy, verb: 'change' | 'run' | 'delete'): Promise<void> {
  const user = principalOf(res);
  if (await deps.permits.isBackupAdmin(user)) return;
  const parts = adminParts(p);
  if (parts.length > 0) await deps.permits.requireBackupAdmin(user, `${verb} policy "${p.name}" (it has what only backup admins set: ${parts.join(', ')})`);
  if ('vmIds' in p.selection) await requireBackupOnAll(deps, res, p.selection.vmIds, verb);
}

/** `backup_disk` on every VM (all of them visible to the caller: checked before). */
async function requireBackupOnAll(deps: ApiDeps, res: Response, vmIds: readonly string[], verb: string): Promise<void> {
  const user = principalOf(res);
  const vms = await deps.auth.visibleVms(user);
  const names = new Map(vms.map((v) => [v.id, v.name]));
  await deps.permits.require(
    user,
    `${verb} ${verb === 'put' ? 'these vms in a policy' : 'a policy of these vms'}`,
    vmIds.map((id) => ({ obj: { kind: 'vm' as const, id }, permits: NEEDS.backup, label: `vm ${names.get(id) ?? id}` })),
  );
}

/** Whether every VM the selection means now is visible to the caller. */
async function selectsOnly(deps: ApiDeps, sel: PolicySelection, visible: ReadonlySet<string>): Promise<boolean> {
  const selected = await deps.policies.selectedVmIds(sel).catch(() => [] as string[]);
  return selected.every((id) => visible.has(id));
}

/** The stored policy if it exists and the caller may see every VM it selects (a backup admin:
 *  any); 404 otherwise. */
async function visiblePolicy(deps: ApiDeps, res: Response, raw: unknown): Promise<StoredPolicy> {
  if (typeof raw !== 'string' || !UUID.test(raw)) throw new AppError('BAD_REQUEST', `policy id ${JSON.stringify(raw)} is not a policy id (a UUID)`);
  const id = raw.toLowerCase();
  const p = deps.policies.get(id);
  if (!p) throw new AppError('NOT_FOUND', `policy ${id} not found`);
  if (await deps.permits.isBackupAdmin(principalOf(res))) return p;
  if (!(await selectsOnly(deps, p.selection, await visibleIds(deps, res)))) throw new AppError('NOT_FOUND', `policy ${id} not found`);
  return p;
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
