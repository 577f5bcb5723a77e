import express, { type Request, type Response, type Router } from 'express';
import { permissionsFor, SYSTEM, systemPermissionsOf, type ObjectRef } from '../access';
import { adminOf, followPaths, isFiltered, queryRefused, sendList, userOf, wrap, type SimContext } from '../context';
import { notFound } from '../faults';
import { directoryGroupView, groupView, permissionView, type RoleFollow } from '../permissionViews';
import { permitsOf, permitView, assignedRoleView, inAppMode, roleById, ROLES, roleView } from '../roles';
import type { SimObjectKind } from '../state';
import { collection, send } from '../wire';

/**
 * Who may do what, over REST (reference ovirt-permissions.md §3): the permissions of an object
 * and of System, the roles and their permits, the engine's groups and a user's directory groups
 * and System roles. Every list is a user-level query: a non-admin asking for `filter=false` is
 * refused, as everywhere.
 */
export function permissionsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  // `follow=role` or `follow=role.permits` (LinkFollower); anything else is an unknown link
  const roleFollow = (req: Request): RoleFollow => {
    const paths = followPaths(req, ['role']);
    if (paths.some((p) => p[1] === 'permits')) return 'role.permits';
    return paths.length ? 'role' : 'none';
  };

  const list = (req: Request, res: Response, object: ObjectRef): void => {
    const filtered = isFiltered(req, res);
    const follow = roleFollow(req);
    const items = permissionsFor(st, userOf(res), object, filtered).map((p) => permissionView(st, p, object, follow));
    send(req, res, 200, 'permissions', collection('permission', items));
  };

  // GetPermissionById: one permission, wherever it is listed from, with its real object
  const one = (req: Request, res: Response, under: ObjectRef): void => {
    isFiltered(req, res);
    const p = st.data.permissions.find((x) => x.id === req.params['pid']);
    if (!p) throw notFound();
    send(req, res, 200, 'permission', permissionView(st, p, under, roleFollow(req)));
  };

  const objects: Array<[string, SimObjectKind]> = [
    ['vms', 'vm'],
    ['clusters', 'cluster'],
    ['datacenters', 'datacenter'],
    ['storagedomains', 'storagedomain'],
    ['disks', 'disk'],
    ['templates', 'template'],
  ];
  for (const [plural, kind] of objects) {
    // the engine does not look the object up first: an unknown one lists what System grants
    r.get(
      `/${plural}/:id/permissions`,
      wrap((req, res) => list(req, res, { kind, id: String(req.params['id']) })),
    );
    r.get(
      `/${plural}/:id/permissions/:pid`,
      wrap((req, res) => one(req, res, { kind, id: String(req.params['id']) })),
    );
  }
  r.get(
    '/permissions',
    wrap((req, res) => list(req, res, SYSTEM)),
  );
  r.get(
    '/permissions/:pid',
    wrap((req, res) => one(req, res, SYSTEM)),
  );

  // ---- roles (BackendRolesResource, GetAllRolesQuery: a non-admin gets the USER-type roles) ----

  r.get(
    '/roles',
    wrap((req, res) => {
      isFiltered(req, res);
      const withPermits = followPaths(req, ['permits']).length > 0;
      const roles = ROLES.filter((x) => inAppMode(x) && (adminOf(res) || x.type === 'USER'));
      sendList(req, res, 'roles', 'role', roles, { name: (x) => x.name, id: (x) => x.id }, (x) => roleView(x, withPermits));
    }),
  );

  r.get(
    '/roles/:id',
    wrap((req, res) => {
      isFiltered(req, res);
      const role = roleById(String(req.params['id']));
      if (!role) throw notFound();
      send(req, res, 200, 'role', roleView(role, followPaths(req, ['permits']).length > 0));
    }),
  );

  r.get(
    '/roles/:id/permits',
    wrap((req, res) => {
      isFiltered(req, res);
      const role = roleById(String(req.params['id']));
      send(req, res, 200, 'permits', collection('permit', role ? permitsOf(role).map((p) => permitView(role.id, p)) : []));
    }),
  );

  r.get(
    '/roles/:id/permits/:pid',
    wrap((req, res) => {
      isFiltered(req, res);
      const role = roleById(String(req.params['id']));
      const permit = role ? permitsOf(role).find((p) => String(p.id) === req.params['pid']) : undefined;
      if (!role || !permit) throw notFound();
      send(req, res, 200, 'permit', permitView(role.id, permit));
    }),
  );

  // ---- groups -----------------------------------------------------------------------------------

  // BackendGroupsResource.list: filtered, GetAllDbGroups (every group); unfiltered, a search for all
  r.get(
    '/groups',
    wrap((req, res) => {
      isFiltered(req, res);
      sendList(req, res, 'groups', 'group', st.data.groups, { name: (g) => g.name, id: (g) => g.id }, groupView);
    }),
  );

  // GetDbGroupById is an admin query (QueryType's default auth type): refused when filtered
  r.get(
    '/groups/:id',
    wrap((req, res) => {
      if (isFiltered(req, res)) throw queryRefused();
      const g = st.group(String(req.params['id']));
      if (!g) throw notFound();
      send(req, res, 200, 'group', groupView(g));
    }),
  );

  /**
   * A user's directory groups (BackendDomainUserGroupsResource, GetAuthzGroupsByUserIdQuery), for
   * any user id and any caller; an unknown user has none. Everyone is not a directory group.
   */
  r.get(
    '/users/:id/groups',
    wrap((req, res) => {
      isFiltered(req, res);
      const u = st.user(String(req.params['id']));
      const groups = (u?.groupIds ?? []).flatMap((id) => st.group(id) ?? []).filter((g) => g.domain !== '');
      send(req, res, 200, 'groups', collection('group', groups.map((g) => directoryGroupView(g))));
    }),
  );

  /** A user's System roles, one per System permission (ovirt-ui-plugin.md §5.9 item 3; access.ts). */
  r.get(
    '/users/:id/roles',
    wrap((req, res) => {
      const filtered = isFiltered(req, res);
      const id = String(req.params['id']);
      const roles = systemPermissionsOf(st, id, userOf(res), filtered).map((p) => assignedRoleView(id, { id: p.roleId, name: roleById(p.roleId)?.name ?? '' }));
      send(req, res, 200, 'roles', collection('role', roles));
    }),
  );

  return r;
}
