import type { SystemRole } from '../types';
import { Fields, listOf, type Json } from './fields';

/** A `role` of `GET /users/{id}/roles`: a system permission mapped to its role's id and name
 *  (ovirt-engine PermissionMapper, Permission → Role). */
export function parseSystemRole(o: Json): SystemRole {
  const f = new Fields('role', o);
  return { id: f.reqStr('id').toLowerCase(), name: f.str('name') };
}

export function parseSystemRoles(body: unknown): SystemRole[] {
  return listOf(body, 'role', 'role list').map(parseSystemRole);
}
