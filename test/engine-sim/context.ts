import type { NextFunction, Request, Response } from 'express';
import { EngineFault, operationFailed } from './faults';
import type { VmPower } from './power';
import type { TokenStore } from './sso';
import type { DiskFormat, SimDiskRecord, SimState, SimUserRecord, SimVmRecord } from './state';
import type { Transfers } from './transfers';
import { boolParam, int, param, send, type Wire } from './wire';
import { pageOf, search, type Fields } from './search';

/** What the route modules share: the engine's parts and its URLs. */
export interface SimContext {
  state: SimState;
  power: VmPower;
  transfers: Transfers;
  tokens: TokenStore;
  /** origin of the engine ('http(s)://127.0.0.1:PORT'), the imageio daemon and proxy */
  urls(): { engine: string; daemon: string; proxy: string };
  createDisk(p: { id?: string; imageId?: string; alias: string; description: string; format: DiskFormat; sparse: boolean; backup: 'none' | 'incremental'; provisionedSize: number; storageDomainId: string }): Promise<SimDiskRecord>;
  deleteDisk(disk: SimDiskRecord): Promise<void>;
}

export type Handler = (req: Request, res: Response) => Promise<void> | void;

export const wrap =
  (fn: Handler) =>
  (req: Request, res: Response, next: NextFunction): void => {
    try {
      const r = fn(req, res);
      if (r instanceof Promise) r.catch(next);
    } catch (err) {
      next(err);
    }
  };

export function userOf(res: Response): SimUserRecord {
  return res.locals['user'] as SimUserRecord;
}

/**
 * Whether the request runs filtered by the user's permissions (reference §1.4): the `filter`
 * parameter (query, matrix or `Filter` header); when absent, non-admins are filtered by default
 * (ENGINE_API_FILTER_BY_DEFAULT). A non-admin asking for unfiltered results is refused.
 */
export function isFiltered(req: Request, res: Response): boolean {
  const user = userOf(res);
  const f = boolParam(req, 'filter');
  if (f === false && !user.admin) throw operationFailed(403, 'query execution failed due to insufficient permissions.');
  return f ?? !user.admin;
}

export function canSeeVm(user: SimUserRecord, filtered: boolean, vm: SimVmRecord): boolean {
  return !filtered || user.admin || vm.permittedUserIds.includes(user.id);
}

export function visibleVms(ctx: SimContext, req: Request, res: Response): SimVmRecord[] {
  const filtered = isFiltered(req, res);
  const user = userOf(res);
  return ctx.state.data.vms.filter((v) => canSeeVm(user, filtered, v));
}

/** A VM for a GET: unknown or not visible -> the engine's bare 404. */
export function getVm(ctx: SimContext, req: Request, res: Response, id: string): SimVmRecord {
  const vm = ctx.state.vm(id);
  if (!vm || !canSeeVm(userOf(res), isFiltered(req, res), vm)) throw new EngineFault(404, 'Not Found', '', false);
  return vm;
}

/**
 * A VM for an action: the command checks permissions first (a user without a role on it,
 * existing or not: 403), then validates (an admin naming a VM that does not exist: 400).
 */
export function actVm(ctx: SimContext, res: Response, id: string, action: string): SimVmRecord {
  const vm = ctx.state.vm(id);
  const user = userOf(res);
  if (!user.admin && (!vm || !vm.permittedUserIds.includes(user.id))) throw operationFailed(403, 'User is not authorized to perform this action.');
  if (!vm) throw operationFailed(400, `Cannot ${action} VM. VM not found`);
  return vm;
}

/** Admin-only inventory (hosts, storage domains...): a filtered non-admin sees none of it. */
export function adminOnly(req: Request, res: Response): boolean {
  return !isFiltered(req, res) || userOf(res).admin;
}

export function allContent(req: Request): boolean {
  return boolParam(req, 'all_content') ?? false;
}

/** Search, `max`, paging, then the wrapped collection. */
export function sendList<T>(req: Request, res: Response, plural: string, singular: string, items: T[], fields: Fields<T>, view: (t: T) => Wire): void {
  const q = param(req, 'search');
  const caseSensitive = boolParam(req, 'case_sensitive') ?? false;
  const max = int({ max: param(req, 'max') }, 'max');
  const found = pageOf(search(items, q, fields, caseSensitive), q, max);
  send(req, res, 200, plural, found.length === 0 ? {} : { [singular]: found.map(view) });
}

/** 201 + Location (absolute, as the engine sends it). */
export function sendCreated(ctx: SimContext, req: Request, res: Response, root: string, body: Wire, status = 201): void {
  if (typeof body['href'] === 'string') res.set('Location', `${ctx.urls().engine}${body['href']}`);
  send(req, res, status, root, body);
}

/** An action's reply: the action echoed with `status: complete`. */
export function sendAction(req: Request, res: Response, echo: Record<string, unknown>, extra: Wire = {}): void {
  const out: Wire = {};
  for (const [k, v] of Object.entries(echo)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  send(req, res, 200, 'action', { ...out, ...extra, status: 'complete' });
}

/**
 * `follow=a,b.c` (reference §1.4): link names compared the engine's way (lower case, no
 * underscores). Returns the normalized paths; unknown first segments fail with 400.
 */
export function followPaths(req: Request, known: string[]): string[][] {
  const v = param(req, 'follow');
  if (!v) return [];
  const norm = (x: string): string => x.toLowerCase().replace(/_/g, '');
  return v
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      const parts = p.split('.').map(norm);
      if (!known.includes(parts[0] ?? '')) throw new EngineFault(400, 'Operation Failed', `Link '${p}' can't be followed, it doesn't exist.`);
      return parts;
    });
}
