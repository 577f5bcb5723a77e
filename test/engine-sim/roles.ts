import type { SimUserRecord } from './state';
import { API, links, ref, type Wire } from './wire';

/** Predefined roles (ovirt-engine PredefinedRoles.java). */
export const SUPER_USER = { id: '00000000-0000-0000-0000-000000000001', name: 'SuperUser' } as const;
export const USER_ROLE = { id: '00000000-0000-0000-0001-000000000001', name: 'UserRole' } as const;

/**
 * The roles a user holds on the system object: admin@internal is SuperUser; user1@internal has
 * UserRole there (its UserRole on web01 is a VM permission, which `/users/{id}/roles` does not
 * list). The simulator has no groups, so no role comes through one.
 */
export function systemRolesOf(u: SimUserRecord): Array<{ id: string; name: string }> {
  return [u.admin ? SUPER_USER : USER_ROLE];
}

/**
 * One `role` of `GET /users/{id}/roles` as the engine writes it: BackendAssignedRolesResource
 * maps each system permission with PermissionMapper (Permission → Role), which sets only the
 * role's id and name (no `administrative`, no `mutable`: those come with `GET /roles/{id}`),
 * then adds the href under the user, the user as parent and the `permits` link.
 */
export function assignedRoleView(userId: string, role: { id: string; name: string }): Wire {
  const base = `${API}/users/${userId}/roles/${role.id}`;
  return { href: base, id: role.id, name: role.name, link: links(base, ['permits']), user: ref('users', userId) };
}
