import type { NextFunction, Request, Response } from 'express';
import { hasPermit, seesVm, type ObjectRef } from './access';
import { EngineFault, operationFailed } from './faults';
import type { VmPower } from './power';
import type { TokenStore } from './sso';
import type { DiskFormat, SimDiskRecord, SimState, SimUserRecord, SimVmRecord } from './state';
import type { Transfers } from './transfers';
import type { Backups } from './backups';
import { boolParam, int, param, send, type Wire } from './wire';
import { pageOf, search, type Fields } from './search';

/** What the route modules share: the engine's parts and its URLs. */
export interface SimContext {
  state: SimState;
  power: VmPower;
  transfers: Transfers;
  backups: Backups;
  tokens: TokenStore;
  /** origin of the engine ('http(s)://127.0.0.1:PORT'), the imageio daemon and proxy */
  urls(): { engine: string; daemon: string; proxy: string };
  createDisk(p: { id?: string; imageId?: string; alias: string; description: string; format: DiskFormat; sparse: boolean; backup: 'none' | 'incremental'; provisionedSize: number; storageDomainId: string }): Promise<SimDiskRecord>;
  /** Deletes the disk's image and record, and the permissions on it. */
  deleteDisk(disk: SimDiskRecord): Promise<void>;
  /** RemoveVm's effect: the VM gone with its permissions, its disks too unless `detachOnly`. */
  removeVm(vm: SimVmRecord, o: { detachOnly: boolean }): Promise<void>;
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

/** Whether the caller is an engine admin (any ADMIN role anywhere); set by apiAuth per request. */
export function adminOf(res: Response): boolean {
  return res.locals['admin'] === true;
}

/**
 * Whether the request runs filtered by the user's permissions (reference §1.4): the `filter`
 * parameter (query, matrix or `Filter` header); when absent, non-admins are filtered by default
 * (ENGINE_API_FILTER_BY_DEFAULT) and admins are not (BaseBackendResource.isFiltered). A non-admin
 * asking for unfiltered results is refused (QueriesCommandBase.validatePermissions).
 */
export function isFiltered(req: Request, res: Response): boolean {
  const admin = adminOf(res);
  const f = boolParam(req, 'filter');
  if (f === false && !admin) throw queryRefused();
  return f ?? !admin;
}

/** A query the caller may not run (an admin-only query filtered, or a user query unfiltered by a non-admin). */
export const queryRefused = (): EngineFault => operationFailed(403, 'query execution failed due to insufficient permissions.');

/** A command's permission check failed (CommandBase: USER_NOT_AUTHORIZED_TO_PERFORM_ACTION). */
export const notAuthorized = (): EngineFault => operationFailed(403, 'User is not authorized to perform this action.');

/** The command's permission subject: `permit` on `object` (or an ancestor), else 403. */
export function requirePermit(ctx: SimContext, res: Response, permit: string, object: ObjectRef): void {
  if (!hasPermit(ctx.state, userOf(res), permit, object)) throw notAuthorized();
}

/** Unfiltered queries show everything (only admins get to run them); filtered ones what the views allow. */
export function canSeeVm(ctx: SimContext, res: Response, filtered: boolean, vm: SimVmRecord): boolean {
  return !filtered || seesVm(ctx.state, userOf(res), vm);
}

export function visibleVms(ctx: SimContext, req: Request, res: Response): SimVmRecord[] {
  const filtered = isFiltered(req, res);
  return ctx.state.data.vms.filter((v) => canSeeVm(ctx, res, filtered, v));
}

/** A VM for a GET: unknown or not visible -> the engine's bare 404. */
export function getVm(ctx: SimContext, req: Request, res: Response, id: string): SimVmRecord {
  const vm = ctx.state.vm(id);
  if (!vm || !canSeeVm(ctx, res, isFiltered(req, res), vm)) throw new EngineFault(404, 'Not Found', '', false);
  return vm;
}

/**
 * A VM for an action: the command checks permissions first (the action's permit on the VM,
 * VmCommand.getPermissionCheckSubjects; a user without it gets 403 whether or not the VM exists),
 * then validates (an admin naming a VM that does not exist: 400).
 */
export function actVm(ctx: SimContext, res: Response, id: string, action: string, permit: string): SimVmRecord {
  requirePermit(ctx, res, permit, { kind: 'vm', id });
  const vm = ctx.state.vm(id);
  if (!vm) throw operationFailed(400, `Cannot ${action} VM. VM not found`);
  return vm;
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
