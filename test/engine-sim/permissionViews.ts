import type { ObjectRef } from './access';
import { roleById, roleView } from './roles';
import type { SimGroupRecord, SimPermissionRecord, SimState, SimUserRecord } from './state';
import { API, clean, links, ref, type Wire } from './wire';

/**
 * The wire shapes of principals and permissions: users, engine groups, a user's directory
 * groups (GroupMapper, UserMapper) and permissions (PermissionMapper, with the links
 * BackendAssignedPermissionsResource adds).
 */

/** DirectoryEntryIdUtils.encode: a directory id (or authz name) as upper-case hex of its UTF-8 bytes. */
export function hexId(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex').toUpperCase();
}

/** `user` (UserMapper): `domain_entry_id` is the hex-encoded directory id. */
export function userView(u: SimUserRecord): Wire {
  const base = `${API}/users/${u.id}`;
  return {
    href: base,
    id: u.id,
    name: u.name,
    link: links(base, ['eventsubscriptions', 'groups', 'options', 'permissions', 'roles', 'sshpublickeys', 'tags']),
    department: '',
    domain_entry_id: hexId(u.externalId),
    email: '',
    last_name: '',
    namespace: '*',
    principal: u.name,
    user_name: `${u.name}@internal-authz`,
    domain: { id: hexId('internal-authz'), name: 'internal-authz' },
  };
}


/** An engine group (`GET /groups`, GroupMapper from DbGroup): the engine id, the directory id hex-encoded. */
export function groupView(g: SimGroupRecord): Wire {
  const base = `${API}/groups/${g.id}`;
  return clean({
    href: base,
    id: g.id,
    name: g.name,
    link: links(base, ['permissions', 'roles', 'tags']),
    domain_entry_id: hexId(g.externalId),
    namespace: '*',
    domain: g.domain ? { id: hexId(g.domain), name: g.domain } : undefined,
  });
}

/**
 * A directory group of a user (`GET /users/{id}/groups`, GroupMapper from AuthzGroup): the id is
 * the hex-encoded directory id, not the engine's; the group sits under its domain.
 */
export function directoryGroupView(g: SimGroupRecord): Wire {
  const domainId = hexId(g.domain);
  return {
    href: `${API}/domains/${domainId}/groups/${hexId(g.externalId)}`,
    id: hexId(g.externalId),
    name: g.name,
    namespace: '*',
    domain: { href: `${API}/domains/${domainId}`, id: domainId, name: g.domain },
  };
}

/** Collection and wire key of each object kind a permission can name (PermissionMapper.setObjectId). */
const OBJECT_KEYS: Partial<Record<ObjectRef['kind'], { key: string; collection: string }>> = {
  datacenter: { key: 'data_center', collection: 'datacenters' },
  cluster: { key: 'cluster', collection: 'clusters' },
  host: { key: 'host', collection: 'hosts' },
  storagedomain: { key: 'storage_domain', collection: 'storagedomains' },
  vm: { key: 'vm', collection: 'vms' },
  template: { key: 'template', collection: 'templates' },
  disk: { key: 'disk', collection: 'disks' },
};

export function collectionOf(kind: ObjectRef['kind']): string | undefined {
  return OBJECT_KEYS[kind]?.collection;
}

export type RoleFollow = 'none' | 'role' | 'role.permits';

/**
 * One `permission`. The principal is a `user` when the id is a user's, else a `group`
 * (BackendAssignedPermissionsResource.map); the object key is the permission's object, which a
 * list has already rewritten to the queried one; System has none. A user's entry sits under the
 * collection it was listed from (`under`), a group's under the group. `follow` replaces the
 * role reference by the role (and its permits).
 */
export function permissionView(st: SimState, p: SimPermissionRecord, under: ObjectRef, follow: RoleFollow): Wire {
  const isUser = st.user(p.principalId) !== undefined;
  const underCollection = collectionOf(under.kind);
  const href = !isUser ? `${API}/groups/${p.principalId}/permissions/${p.id}` : underCollection ? `${API}/${underCollection}/${under.id}/permissions/${p.id}` : `${API}/permissions/${p.id}`;
  const role = roleById(p.roleId);
  const object = OBJECT_KEYS[p.objectKind];
  return clean({
    href,
    id: p.id,
    role: follow !== 'none' && role ? roleView(role, follow === 'role.permits') : ref('roles', p.roleId),
    user: isUser ? ref('users', p.principalId) : undefined,
    group: isUser ? undefined : ref('groups', p.principalId),
    ...(object ? { [object.key]: ref(object.collection, p.objectId) } : {}),
  });
}

