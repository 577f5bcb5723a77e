import { isAppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseDirectoryGroups, parseEngineGroups } from './parse/group';
import { parsePermissions } from './parse/permission';
import type { PermissionEntry, PermitObject } from './types';

/**
 * What the engine lets a user do to an object, read the way the VM Portal reads it (reference
 * ovirt-permissions.md §5): the object's permission list with each role's permits, the user's
 * engine groups, and the permits of the entries that are the user's, his groups' or Everyone's.
 * The engine itself checks the same permit on the same object (or an ancestor) when the user runs
 * a command (§4); this is how the product asks the question before acting for him.
 */

/** The built-in group every user belongs to (Guid.EVERYONE); the engine does not list it among a
 *  user's groups (listUserGroups adds it). */
export const EVERYONE_GROUP_ID = 'eee00000-0000-0000-0000-123456789eee';
export const EVERYONE_GROUP_NAME = 'Everyone';

/**
 * The principal ids a user's grants come through, for permitsOf: the user's own, the user's
 * engine groups' and always Everyone's (whether `groupIds` names it or not). The one place both
 * a request's check (the caller's groups now) and a policy run's (its owner's, as saved) build it.
 */
export function principalIds(userId: string, groupIds: readonly string[]): Set<string> {
  return new Set([userId, ...groupIds, EVERYONE_GROUP_ID].map((id) => id.toLowerCase()));
}

const COLLECTIONS: Record<Exclude<PermitObject['kind'], 'system'>, string> = {
  vm: 'vms',
  cluster: 'clusters',
  datacenter: 'datacenters',
  storagedomain: 'storagedomains',
  disk: 'disks',
  template: 'templates',
};

/**
 * `GET /{objects}/{id}/permissions?follow=role.permits` (or `GET /permissions` for the system),
 * with the connection's `Filter`. Inherited grants come back as if made on the object. Filtered,
 * the list holds the caller's (groups', Everyone's) grants and, when he holds one directly on the
 * object, everyone else's direct ones too; unfiltered (an admin), every principal's.
 */
export async function listPermissions(conn: EngineConnection, obj: PermitObject, opts: EngineCallOptions = {}): Promise<PermissionEntry[]> {
  const path = obj.kind === 'system' ? '/permissions' : `/${COLLECTIONS[obj.kind]}/${seg(obj.id)}/permissions`;
  return parsePermissions(await conn.request({ ...opts, method: 'GET', path, query: { follow: 'role.permits' } }));
}

/**
 * The engine groups a user's grants may come through, with their names: the engine groups whose
 * directory id is among the user's directory groups (`GET /users/{id}/groups` × `GET /groups`
 * `domain_entry_id`, the VM Portal's sagas/base-data.js fetchUserGroups), plus Everyone, last. A
 * directory group the engine does not know has no id and grants nothing: it is left out. Both
 * are user-level queries any caller may run; an engine that refuses them anyway (403) or does
 * not know the user (404) leaves Everyone only: fail closed, the user's own grants still count.
 */
export async function listUserGroups(conn: EngineConnection, userId: string, opts: EngineCallOptions = {}): Promise<Array<{ id: string; name: string }>> {
  const everyone = { id: EVERYONE_GROUP_ID, name: EVERYONE_GROUP_NAME };
  try {
    const directory = parseDirectoryGroups(await conn.request({ ...opts, method: 'GET', path: `/users/${seg(userId)}/groups` }));
    if (directory.length === 0) return [everyone];
    const engineGroups = parseEngineGroups(await conn.request({ ...opts, method: 'GET', path: '/groups' }));
    // a directory id is unique within its directory: match the directory's name too when both sides give it
    const mine = engineGroups.filter((g) => directory.some((d) => d.id === g.domainEntryId && (d.domainName === undefined || g.domainName === undefined || d.domainName === g.domainName)));
    const byId = new Map(mine.map((g) => [g.id, { id: g.id, name: g.name }]));
    return [...byId.values(), everyone];
  } catch (err) {
    if (isRefusal(err)) return [everyone];
    throw err;
  }
}

/**
 * The permit names of the entries whose principal is one of `principalIds` (the user's id, his
 * engine groups, Everyone: see principalIds). Other entries are ignored: a filtered list
 * shows other users' direct grants too.
 */
export function permitsOf(entries: readonly PermissionEntry[], principalIds: ReadonlySet<string>): Set<string> {
  const mine = new Set([...principalIds].map((id) => id.toLowerCase()));
  const out = new Set<string>();
  for (const e of entries) if (mine.has(e.principal.id)) for (const p of e.permits) out.add(p);
  return out;
}

/**
 * A matcher for user and group names as an operator lists them (auth.backupAdmins). Case does
 * not matter, and a user may be written with the profile one logs in with (`ops@internal`) or
 * with the authz name the engine's API gives (`ops@internal-authz`): both name the same user.
 */
export function principalNames(names: readonly string[]): (name: string) => boolean {
  const wanted = new Set(names.map(canonicalName));
  return (name) => wanted.has(canonicalName(name));
}

function canonicalName(name: string): string {
  const lower = name.trim().toLowerCase();
  const at = lower.lastIndexOf('@');
  return at > 0 && lower.endsWith('-authz') ? lower.slice(0, -'-authz'.length) : lower;
}

/**
 * Whether the token's user is an engine admin (any ADMIN-type role anywhere): the VM Portal asks
 * `GET /permissions` with `Filter: false`, which the engine refuses to a non-admin (403, "Query
 * execution failed due to insufficient permissions"; reference §1, §5). An admin should read
 * unfiltered: filtered, the engine shows only what USER-type roles make visible, so a SuperUser
 * would see no VM at all.
 */
export async function isEngineAdmin(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<boolean> {
  try {
    await conn.request({ ...opts, method: 'GET', path: '/permissions', filter: false });
    return true;
  } catch (err) {
    if (isAppError(err, 'ENGINE_HTTP_ERROR') && err.details?.['status'] === 403) return false;
    throw err;
  }
}

function isRefusal(err: unknown): boolean {
  return isAppError(err, 'ENGINE_NOT_FOUND') || (isAppError(err, 'ENGINE_HTTP_ERROR') && err.details?.['status'] === 403);
}
