import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseApiInfo } from './parse/api';
import { entityOf } from './parse/fields';
import { parseUser, parseUsers } from './parse/user';
import type { ApiInfo, User } from './types';

/** `GET /api`: product version and who the token belongs to (reference §1.1). */
export async function getApiInfo(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<ApiInfo> {
  return parseApiInfo(await conn.request({ ...opts, method: 'GET', path: '' }));
}

/** `GET /users/{id}`: user_name (`user@profile`), principal, namespace, domain. */
export async function getUser(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<User> {
  return parseUser(entityOf(await conn.request({ ...opts, method: 'GET', path: `/users/${seg(id)}` }), `user ${id}`));
}

/** `GET /users?search=...`, e.g. `usrname=admin@internal-authz`. */
export async function findUsers(conn: EngineConnection, search: string, opts: EngineCallOptions = {}): Promise<User[]> {
  return parseUsers(await conn.request({ ...opts, method: 'GET', path: '/users', query: { search, case_sensitive: false } }));
}
