import type { PermissionEntry } from '../types';
import { Fields, listOf, protocolError, type Json } from './fields';

/**
 * `permission` of an object's permission list read with `follow=role.permits` (reference
 * ovirt-permissions.md §3.1): the role inlined with its permits; the principal a `user` or a
 * `group`. A role that is not inlined (an engine that ignored `follow`) is refused rather than
 * read as a role without permits.
 */
export function parsePermission(o: Json): PermissionEntry {
  const f = new Fields('permission', o);
  const role = f.sub('role');
  if (!role) throw protocolError(`engine sent ${f.label} without role`, { entity: 'permission', field: 'role' });
  const user = f.refId('user');
  const group = f.refId('group');
  const principalId = user ?? group;
  if (principalId === undefined) throw protocolError(`engine sent ${f.label} without user or group`, { entity: 'permission', field: 'user|group' });
  const administrative = role.bool('administrative');
  if (administrative === undefined) throw protocolError(`engine sent ${f.label} whose role is not inlined (follow=role.permits)`, { entity: 'permission', field: 'role' });
  return {
    id: f.reqStr('id').toLowerCase(),
    roleId: role.reqStr('id').toLowerCase(),
    roleName: role.reqStr('name'),
    administrative,
    // an inlined role with no permits may come without the list or as `{}`
    permits: (role.nestedList('permits', 'permit') ?? []).map((p) => new Fields(`${role.label} permit`, p).reqStr('name').toLowerCase()),
    principal: { kind: user !== undefined ? 'user' : 'group', id: principalId.toLowerCase() },
  };
}

export function parsePermissions(body: unknown): PermissionEntry[] {
  return listOf(body, 'permission', 'permission list').map(parsePermission);
}
