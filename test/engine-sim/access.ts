import { randomUUID } from 'crypto';
import { permitByName } from './permits';
import { inAppMode, roleById, type Role } from './roles';
import { EVERYONE_ID, SYSTEM_ID, type SimDiskRecord, type SimHostRecord, type SimObjectKind, type SimPermissionRecord, type SimState, type SimUserRecord, type SimVmRecord } from './state';

/**
 * The engine's permission model over the simulator's records (reference ovirt-permissions.md
 * §1): who a user is for checks (himself, his groups, Everyone), whether he is an admin, the
 * ancestors an object inherits permissions from, whether a command's permit check passes, and
 * what a filtered query lets him see. Each rule names the engine code it follows; the REST
 * shapes are in routes/permissions.ts.
 */

export interface ObjectRef {
  kind: SimObjectKind;
  id: string;
}

export const SYSTEM: ObjectRef = { kind: 'system', id: SYSTEM_ID };

interface Grant {
  p: SimPermissionRecord;
  role: Role;
}

/**
 * The ids a user's permissions are looked up under: the user, the engine groups of his directory
 * groups, and Everyone (create_views.sql engine_session_user_flat_groups; create_functions.sql
 * getUserAndGroupsById). The engine fixes the groups at login; the simulator reads them live.
 */
export function principalIds(st: SimState, user: SimUserRecord): Set<string> {
  return new Set([user.id, ...user.groupIds.filter((g) => st.group(g) !== undefined), EVERYONE_ID]);
}

function grantsOf(st: SimState, principals: ReadonlySet<string>): Grant[] {
  const out: Grant[] = [];
  for (const p of st.data.permissions) {
    const role = roleById(p.roleId);
    if (role && principals.has(p.principalId)) out.push({ p, role });
  }
  return out;
}

/**
 * Whether the user is an admin: any ADMIN-type role granted to him, his groups or Everyone, on any
 * object (multi_level_administration_sp.sql GetAnyAdminRoleByUserIdAndGroupIds, run at login by
 * CreateUserSessionCommand). Decides the default of `Filter` and who may query unfiltered.
 */
export function isAdmin(st: SimState, user: SimUserRecord): boolean {
  return grantsOf(st, principalIds(st, user)).some((g) => g.role.type === 'ADMIN' && inAppMode(g.role));
}

/**
 * The object and its ancestors, as create_functions.sql fn_get_entity_parents lists them: a VM
 * inherits from its cluster, the cluster's data center and System; a disk from its storage domain,
 * that domain's data center, the VM it is attached to and that VM's cluster; a template from the
 * data center of its first disk's domain (Blank has no disk: System only). An unknown object
 * still has itself and System, so an admin's check passes and validation answers.
 */
export function parentIds(st: SimState, ref: ObjectRef): string[] {
  const d = st.data;
  const ids = new Set<string>([ref.id]);
  const vmChain = (vm: SimVmRecord | undefined): void => {
    if (!vm) return;
    ids.add(vm.id);
    ids.add(vm.clusterId);
    if (vm.clusterId === d.clusterId) ids.add(d.dataCenterId);
  };
  switch (ref.kind) {
    case 'cluster':
      if (ref.id === d.clusterId) ids.add(d.dataCenterId);
      break;
    case 'host':
      if (st.host(ref.id)) {
        ids.add(d.clusterId);
        ids.add(d.dataCenterId);
      }
      break;
    case 'vm':
      vmChain(st.vm(ref.id));
      break;
    case 'storagedomain':
      // every domain is attached to the one data center (storage_pool_iso_map)
      if (st.storageDomain(ref.id)) ids.add(d.dataCenterId);
      break;
    case 'disk': {
      const disk = st.disk(ref.id);
      if (disk) {
        ids.add(disk.storageDomainId);
        ids.add(d.dataCenterId);
        vmChain(st.vmOfDisk(disk.id));
      }
      break;
    }
    default:
      break;
  }
  ids.add(SYSTEM_ID);
  return [...ids];
}

/**
 * A command's permission subject (CommandBase.checkSinglePermission → multi_level_administration_sp
 * get_entity_permissions): some permission of the user, his groups or Everyone, on the object or an
 * ancestor, whose role holds the permit. Role type and allows_viewing_children play no part.
 */
export function hasPermit(st: SimState, user: SimUserRecord, permit: string, ref: ObjectRef): boolean {
  const id = permitByName(permit)?.id;
  if (id === undefined) throw new Error(`engine simulator: no permit named ${permit}`);
  const parents = new Set(parentIds(st, ref));
  return grantsOf(st, principalIds(st, user)).some((g) => parents.has(g.p.objectId) && g.role.permitIds.includes(id));
}

// ---- what a filtered query shows (create_views.sql user_*_permissions_view) ----------------

function userGrants(st: SimState, user: SimUserRecord): Grant[] {
  return grantsOf(st, principalIds(st, user)).filter((g) => g.role.type === 'USER');
}

const on = (g: Grant, kind: SimObjectKind, id: string): boolean => g.p.objectKind === kind && g.p.objectId === id;

/**
 * user_vm_permissions_view: a USER-type role on the VM, or one that allows viewing children on
 * its cluster, data center or System. ADMIN roles never make a VM visible to a filtered query.
 */
export function seesVm(st: SimState, user: SimUserRecord, vm: SimVmRecord): boolean {
  const d = st.data;
  return userGrants(st, user).some(
    (g) => on(g, 'vm', vm.id) || (g.role.allowsViewingChildren && (on(g, 'cluster', vm.clusterId) || (vm.clusterId === d.clusterId && on(g, 'datacenter', d.dataCenterId)) || g.p.objectKind === 'system')),
  );
}

/**
 * user_disk_permissions_view: a USER-type role on the disk (any), a visible VM it is attached to,
 * or a USER role that allows viewing children on its storage domain or data center; on System
 * only for disks that are attached to a VM (the view joins vm_device).
 */
export function seesDisk(st: SimState, user: SimUserRecord, disk: SimDiskRecord): boolean {
  const vm = st.vmOfDisk(disk.id);
  if (vm && seesVm(st, user, vm)) return true;
  return userGrants(st, user).some(
    (g) => on(g, 'disk', disk.id) || (g.role.allowsViewingChildren && (on(g, 'storagedomain', disk.storageDomainId) || on(g, 'datacenter', st.data.dataCenterId) || (vm !== undefined && g.p.objectKind === 'system'))),
  );
}

/** user_cluster_permissions_view: any USER role on the cluster, a VM in it, its data center or System. */
export function seesCluster(st: SimState, user: SimUserRecord, clusterId: string): boolean {
  const d = st.data;
  return userGrants(st, user).some(
    (g) =>
      on(g, 'cluster', clusterId) ||
      (g.p.objectKind === 'vm' && st.vm(g.p.objectId)?.clusterId === clusterId) ||
      (clusterId === d.clusterId && on(g, 'datacenter', d.dataCenterId)) ||
      g.p.objectKind === 'system',
  );
}

/** user_storage_pool_permissions_view: any USER role on the data center, a cluster or VM in it, or System. */
export function seesDataCenter(st: SimState, user: SimUserRecord, dcId: string): boolean {
  const d = st.data;
  if (dcId !== d.dataCenterId) return false;
  return userGrants(st, user).some((g) => on(g, 'datacenter', dcId) || on(g, 'cluster', d.clusterId) || (g.p.objectKind === 'vm' && st.vm(g.p.objectId) !== undefined) || g.p.objectKind === 'system');
}

/**
 * user_storage_domain_permissions_view: any USER role on the domain, on a VM of a cluster of the
 * domain's data center, on that data center, or on System.
 */
export function seesStorageDomain(st: SimState, user: SimUserRecord, sdId: string): boolean {
  if (!st.storageDomain(sdId)) return false;
  return userGrants(st, user).some((g) => on(g, 'storagedomain', sdId) || (g.p.objectKind === 'vm' && st.vm(g.p.objectId) !== undefined) || on(g, 'datacenter', st.data.dataCenterId) || g.p.objectKind === 'system');
}

/**
 * user_vds_permissions_view. Its join reads `(cluster match) OR (data center match) AND role_type
 * = 2`; SQL binds AND first, so a role of any type on the host's cluster shows the host, while the
 * data center needs a USER role. System needs a USER role.
 */
export function seesHost(st: SimState, user: SimUserRecord, _host: SimHostRecord): boolean {
  const d = st.data;
  const all = grantsOf(st, principalIds(st, user));
  return all.some((g) => on(g, 'cluster', d.clusterId) || (g.role.type === 'USER' && (on(g, 'datacenter', d.dataCenterId) || g.p.objectKind === 'system')));
}

/**
 * user_vm_template_permissions_view for the Blank template (the only one): a USER role on it
 * (Everyone's UserTemplateBasedVm from data/00600_insert_permissions.sql), on a VM made from it
 * (every VM here), or one that allows viewing children on System.
 */
export function seesTemplate(st: SimState, user: SimUserRecord, templateId: string): boolean {
  return userGrants(st, user).some((g) => on(g, 'template', templateId) || (g.p.objectKind === 'vm' && st.vm(g.p.objectId) !== undefined) || (g.role.allowsViewingChildren && g.p.objectKind === 'system'));
}

// ---- what GET …/permissions and GET /users/{id}/roles list --------------------------------

/** Permissions whose role the engine lists in its application mode (permissions_view.app_mode). */
function listed(st: SimState): SimPermissionRecord[] {
  return st.data.permissions.filter((p) => {
    const r = roleById(p.roleId);
    return r !== undefined && inAppMode(r);
  });
}

/**
 * `GET /{objects}/{id}/permissions` (BackendAssignedPermissionsResource.list,
 * GetPermissionsForObjectQuery; multi_level_administration_sp.sql GetPermissionsByEntityId and
 * GetPermissionsTreeByEntityId): the direct permissions of the object, plus the permissions on it
 * and its ancestors with each rewritten to carry the queried object; one entry per permission id,
 * in id order (a TreeSet). Filtered: the direct half is every direct permission if the caller
 * (or a group of his, or Everyone) holds one there, else none; the inherited half only the
 * caller's, his groups' and Everyone's. The object need not exist, nor be visible.
 */
export function permissionsFor(st: SimState, caller: SimUserRecord, ref: ObjectRef, filtered: boolean): SimPermissionRecord[] {
  const principals = principalIds(st, caller);
  const holdsDirect = st.data.permissions.some((p) => p.objectId === ref.id && principals.has(p.principalId));
  const parents = new Set(parentIds(st, ref));
  const shown = listed(st);
  const direct = shown.filter((p) => p.objectId === ref.id && (!filtered || holdsDirect));
  const inherited = shown.filter((p) => parents.has(p.objectId) && (!filtered || principals.has(p.principalId))).map((p) => ({ ...p, objectKind: ref.kind, objectId: ref.id }));
  const byId = new Map<string, SimPermissionRecord>();
  for (const p of [...direct, ...inherited]) if (!byId.has(p.id)) byId.set(p.id, p);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * `GET /users/{id}/roles` (BackendAssignedRolesResource, GetPermissionsOnBehalfByAdElementIdQuery,
 * GetPermissionsByAdElementIdAndGroupIds): the System permissions of the user, of the engine
 * groups of his directory groups and of Everyone (also for an id that is no user); filtered, only
 * a caller asking about himself gets any.
 */
export function systemPermissionsOf(st: SimState, targetId: string, caller: SimUserRecord, filtered: boolean): SimPermissionRecord[] {
  if (filtered && targetId !== caller.id) return [];
  const target = st.user(targetId);
  const ids = new Set([targetId, ...(target?.groupIds ?? []), EVERYONE_ID]);
  return listed(st).filter((p) => ids.has(p.principalId) && p.objectKind === 'system');
}

// ---- changes ---------------------------------------------------------------------------------

/** Adds a permission; the same role for the same principal on the same object is not added twice. */
export function grant(st: SimState, p: { roleId: string; principalId: string; object: ObjectRef; id?: string; creationDate?: number }): SimPermissionRecord {
  const same = st.data.permissions.find((x) => x.roleId === p.roleId && x.principalId === p.principalId && x.objectId === p.object.id);
  if (same) return same;
  const rec: SimPermissionRecord = { id: p.id ?? randomUUID(), roleId: p.roleId, principalId: p.principalId, objectKind: p.object.kind, objectId: p.object.id, creationDate: p.creationDate ?? Math.floor(Date.now() / 1000) };
  st.data.permissions.push(rec);
  st.save();
  return rec;
}

export function revoke(st: SimState, permissionId: string): boolean {
  const before = st.data.permissions.length;
  st.data.permissions = st.data.permissions.filter((p) => p.id !== permissionId);
  if (st.data.permissions.length === before) return false;
  st.save();
  return true;
}

/** What RemoveVm / RemoveDisk do to an object's permissions (DeletePermissionsByEntityId). */
export function dropPermissionsOn(st: SimState, objectId: string): void {
  st.data.permissions = st.data.permissions.filter((p) => p.objectId !== objectId);
  st.save();
}
