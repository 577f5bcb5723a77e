import { AppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseApiInfo } from './parse/api';
import { entityOf } from './parse/fields';
import { parseSystemRoles } from './parse/role';
import { parseUser, parseUsers } from './parse/user';
import type { ApiInfo, SystemRole, User } from './types';

/** `GET /api`: product version and who the token belongs to (reference §1.1). */
export async function getApiInfo(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<ApiInfo> {
  return parseApiInfo(await conn.request({ ...opts, method: 'GET', path: '' }));
}

/** Who the token belongs to: `GET /api` → authenticated_user, then `GET /users/{id}`
 *  (ovirt-ui-plugin.md §5.9). */
export async function getCurrentUser(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<User> {
  const info = await getApiInfo(conn, opts);
  if (info.authenticatedUserId === undefined) {
    throw new AppError('ENGINE_PROTOCOL_ERROR', `engine did not say who ${conn.who} is (no authenticated_user in the api root)`);
  }
  return getUser(conn, info.authenticatedUserId, opts);
}

/** `GET /users/{id}`: user_name (`user@authz`), principal, namespace, domain. */
export async function getUser(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<User> {
  return parseUser(entityOf(await conn.request({ ...opts, method: 'GET', path: `/users/${seg(id)}` }), `user ${id}`));
}

/** `GET /users?search=...`, e.g. `usrname=admin@internal-authz`. */
export async function findUsers(conn: EngineConnection, search: string, opts: EngineCallOptions = {}): Promise<User[]> {
  return parseUsers(await conn.request({ ...opts, method: 'GET', path: '/users', query: { search, case_sensitive: false } }));
}

/**
 * `GET /users/{id}/roles`: the roles the user holds on the system object (ovirt-ui-plugin.md
 * §5.9 item 3): his own, his directory groups' (so a SuperUser through an LDAP group counts) and
 * Everyone's (GetPermissionsOnBehalfByAdElementIdQuery). A filtered caller gets an answer only
 * about himself; asking about someone else answers an empty list.
 */
export async function listSystemRoles(conn: EngineConnection, userId: string, opts: EngineCallOptions = {}): Promise<SystemRole[]> {
  return parseSystemRoles(await conn.request({ ...opts, method: 'GET', path: `/users/${seg(userId)}/roles` }));
}
