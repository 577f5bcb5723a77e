import { permitById, type Permit, type RoleType } from './permits';
import { API, links, ref, s, type Wire } from './wire';

/**
 * The predefined roles of a fresh engine and their permits, as its database holds them after
 * engine-setup: role rows from ovirt-engine packaging/dbscripts/data/00500_insert_roles.sql, permits
 * from data/00700_insert_roles_groups.sql plus the upgrade scripts that add permits to roles
 * (upgrade/04_01_0460 sparsify_disk, 04_02_0190 configure_mac_pool, 04_03_0170 reduce_disk,
 * 04_03_0750 backup_disk, 04_04_1060 reset_vm) and change role rows (04_02_0630: VnicProfileUser
 * allows viewing children; 04_04_0770: MacPoolUser is USER-type). Permit lists keep the order the
 * rows were inserted in, which is the order GET /roles/{id}/permits lists them. There are no
 * roles named "VmOperator" or "UserVmViewer": VM_OPERATOR is only the Java name
 * (PredefinedRoles.java) of UserVmManager. The REST views of roles and permits are here too.
 */

export interface Role {
  id: string;
  name: string;
  description: string;
  /** roles.role_type: 1 = ADMIN, 2 = USER (REST `administrative`) */
  type: RoleType;
  /** roles.allows_viewing_children: not on the wire (RoleMapper does not map it), used by filtering */
  allowsViewingChildren: boolean;
  /** roles.app_mode: 1 virt, 2 gluster, 255 both */
  appMode: number;
  /** predefined roles are read-only (REST `mutable: false`) */
  readonly: boolean;
  permitIds: number[];
}

/**
 * The engine's ApplicationMode: engine-setup's default answer is "Virt" (VirtOnly = 1), so
 * GlusterAdmin (app_mode 2) is left out of role lists and its grants out of permission lists
 * (GetAllFromRole, GetPermissionsByEntityId: `app_mode & v_app_mode > 0`).
 */
export const APP_MODE = 1;

// [id, name, description, role_type, allows_viewing_children, app_mode, permits]
const TABLE: Array<[string, string, string, RoleType, boolean, number, number[]]> = [
  ['00000000-0000-0000-0000-000000000001', 'SuperUser', 'Roles management administrator', 'ADMIN', true, 255, [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 100, 101, 102, 103, 104, 200, 201, 202, 203, 204, 300, 301, 302, 303, 400, 401, 402, 403, 500, 501, 502, 600, 601, 602, 603, 700, 701, 702, 703, 704, 705, 800, 900, 901, 13, 1100, 1101, 1102, 1103, 1104, 1000, 1001, 1002, 14, 1300, 404, 1500, 1003, 15, 205, 1004, 1105, 1203, 1204, 1205, 1106, 1301, 1302, 1303, 1550, 503, 1304, 1660, 1661, 1662, 1663, 1560, 1561, 1562, 17, 18, 19, 21, 22, 1400, 1563, 1107, 1664, 1666, 1665, 1667, 1668, 1108, 1109, 1110, 23]],
  ['00000000-0000-0000-0001-000000000001', 'UserRole', 'Standard User Role', 'USER', true, 1, [5, 7, 303, 1300, 1106, 17, 18, 19, 21, 22, 23]],
  ['00000000-0000-0000-0001-000000000002', 'PowerUserRole', 'User Role, allowed to create VMs, Templates and Disks', 'USER', false, 1, [1, 200, 1100, 1300, 1106, 1666, 1665, 1667, 1668, 1563]],
  ['def00001-0000-0000-0000-def000000001', 'ClusterAdmin', 'Administrator Role, permission for all the objects underneath a specific Cluster', 'ADMIN', true, 255, [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 300, 301, 302, 303, 100, 101, 102, 103, 104, 400, 401, 402, 403, 1100, 1101, 1102, 1103, 1104, 14, 502, 1300, 15, 1301, 1302, 1303, 1550, 503, 1304, 17, 18, 19, 21, 22, 1107, 1665, 1666, 1667, 1668, 1563, 1108, 1663, 1109, 1110, 23]],
  ['def00002-0000-0000-0000-def000000002', 'DataCenterAdmin', 'Administrator Role, permission for all the objects underneath a specific Data Center, except Storage', 'ADMIN', true, 1, [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 200, 201, 202, 203, 204, 300, 301, 302, 303, 100, 101, 102, 103, 104, 400, 401, 402, 403, 700, 701, 702, 703, 704, 705, 900, 901, 1100, 1101, 1102, 1103, 1104, 14, 502, 1300, 404, 15, 205, 1105, 1203, 1204, 1205, 1301, 1302, 1303, 1550, 503, 1304, 17, 18, 19, 21, 22, 1107, 1663, 1665, 1666, 1667, 1668, 1563, 1108, 1109, 1110, 23]],
  ['def00003-0000-0000-0000-def000000003', 'StorageAdmin', 'Administrator Role, permission for all operations on a specific Storage Domain', 'ADMIN', true, 1, [600, 601, 602, 603, 1100, 1101, 1102, 1103, 1104, 1300, 1106, 1301, 1302, 1303, 1304, 1560, 1561, 1562, 1563, 1107, 1108, 1109, 1110]],
  ['def00004-0000-0000-0000-def000000004', 'HostAdmin', 'Administrator Role, permission for all operations on a specific Host', 'ADMIN', true, 255, [100, 101, 102, 103, 104, 600, 601, 602, 603, 1300, 1301, 1302, 1303, 1304, 1560, 1561, 1562, 1563]],
  ['def00005-0000-0000-0000-def000000005', 'NetworkAdmin', 'Administrator Role, permission for all operations on a specific Logical Network', 'ADMIN', true, 255, [104, 403, 1300, 404, 703, 704, 705, 9, 204, 1203, 1204, 1205, 1301, 1302, 1303, 1304]],
  ['def00006-0000-0000-0000-def000000006', 'UserVmManager', 'User Role, with permission for any operation on Vms', 'USER', true, 1, [1, 2, 3, 5, 7, 9, 10, 12, 1100, 1101, 1102, 1104, 502, 1300, 503, 17, 18, 19, 21, 22, 1664, 1668, 1108, 1109, 1110, 23]],
  ['def00007-0000-0000-0000-def000000007', 'VmPoolAdmin', 'Administrator Role, permission for all operations on a specific VM Pool', 'ADMIN', true, 1, [300, 301, 302, 303, 1, 1300, 1301, 1302, 1303, 1304, 1668]],
  ['def00008-0000-0000-0000-def000000008', 'TemplateAdmin', 'Administrator Role, permission for all operations on a specific Template', 'ADMIN', true, 1, [200, 201, 202, 203, 204, 1300, 205, 1106, 1301, 1302, 1303, 1304, 502, 503]],
  ['def0000a-0000-0000-0000-def00000000a', 'QuotaConsumer', 'User Role, permissions to consume the Quota resources', 'USER', false, 1, [901]],
  ['def0000a-0000-0000-0000-def00000000b', 'DiskOperator', 'User Role, permissions for all operations on a specific disk', 'USER', true, 1, [1100, 1101, 1102, 1104, 502, 1300, 503, 1108, 1109, 1110]],
  ['def0000a-0000-0000-0000-def00000000c', 'DiskCreator', 'User Role, permission to create Disks', 'USER', false, 1, [1100, 1300]],
  ['def0000b-0000-0000-0000-def00000000b', 'GlusterAdmin', 'Administrator Role, permissions for operations on Gluster objects', 'ADMIN', true, 2, [1000, 1001, 1002, 1300, 1003, 1004, 400, 401, 402, 403, 404, 100, 101, 102, 103, 104, 1301, 1302, 1303, 1304]],
  ['def0000a-0000-0000-0000-def00000000d', 'VmCreator', 'User Role, permission to create VMs', 'USER', false, 1, [1, 1100, 1300, 1668]],
  ['def0000a-0000-0000-0000-def00000000e', 'TemplateCreator', 'User Role, permission to create Templates', 'USER', false, 1, [200, 1300]],
  ['def0000a-0000-0000-0000-def00000000f', 'TemplateOwner', 'User Role, permissions for all operations on Templates', 'USER', true, 1, [201, 202, 203, 204, 1300, 502, 503]],
  ['def0000c-0000-0000-0000-def000000000', 'ExternalEventsCreator', 'External Events Creator', 'USER', false, 255, [1400]],
  ['def0000d-0000-0000-0000-def000000000', 'ExternalTasksCreator', 'External Tasks Creator', 'USER', false, 255, [1500]],
  ['def0000a-0000-0000-0000-def000000010', 'VnicProfileUser', 'VM Network Interface Profile User', 'USER', true, 1, [9, 204, 1300]],
  ['def00009-0000-0000-0000-def000000009', 'UserTemplateBasedVm', 'Template User', 'USER', false, 1, [1, 1668]],
  ['def00011-0000-0000-0000-def000000011', 'InstanceCreator', 'User Role, permission to create Instances', 'USER', false, 1, [16, 1100, 1300]],
  ['def00012-0000-0000-0000-def000000012', 'UserInstanceManager', 'User Role, with permission for any operation on Instances', 'USER', false, 1, [2, 3, 5, 7, 10, 12, 1100, 1101, 1102, 1104, 1300, 502, 503, 17, 18, 19, 21, 22, 1664, 1108, 1109, 1110, 23]],
  ['def0000c-0000-0000-0000-def00000000c', 'ReadOnlyAdmin', 'Read Only Administrator Role', 'ADMIN', true, 1, [1300]],
  ['def00011-0000-0000-0000-def000000013', 'TagManager', 'Tag Manager', 'ADMIN', false, 255, [1301, 1300, 1304]],
  ['def00011-0000-0000-0000-def000000014', 'BookmarkManager', 'Bookmark Manager', 'ADMIN', false, 255, [1302, 1300, 1304]],
  ['def00011-0000-0000-0000-def000000015', 'EventNotificationManager', 'Event Notification Manager', 'ADMIN', false, 255, [1303, 1300, 1304]],
  ['def00011-0000-0000-0000-def000000016', 'AuditLogManager', 'Audit Log Manager', 'ADMIN', false, 255, [1304, 1300]],
  ['def00013-0000-0000-0000-def000000013', 'MacPoolAdmin', 'MAC Pool Administrator Role, permission for manipulation with MAC pools', 'ADMIN', true, 1, [1660, 1661, 1662, 1663, 1300]],
  ['def00014-0000-0000-0000-def000000014', 'MacPoolUser', 'MAC Pool User Role, permission allowing using MAC pools', 'USER', true, 1, [1663, 1300]],
  ['def00020-0000-0000-0000-abc000000010', 'DiskProfileUser', 'Disk Profile User', 'USER', false, 1, [1563]],
  ['def00006-0000-0000-0000-def000000011', 'UserVmRunTimeManager', 'User Role, with permissions for any operations on VMs except snapshot manipulation', 'USER', false, 1, [1, 2, 3, 5, 7, 9, 10, 1100, 1101, 1102, 1104, 502, 1300, 503, 17, 18, 19, 21, 22, 1668, 1108, 1109, 1110, 23]],
  ['def00021-0000-0000-0000-def000000015', 'UserProfileEditor', 'Role that allow users to edit the UserProfile', 'USER', false, 255, [504]],
  ['def00030-0000-0000-0000-def000000011', 'VmImporterExporter', 'Administrator Role, with permission to import or export Vms', 'ADMIN', true, 1, [8, 1300, 1563, 1668]],
  ['def00017-0000-0000-0000-def000000017', 'CpuProfileOperator', 'Cpu Profile Operation', 'USER', false, 1, [1668]],
  ['def00016-0000-0000-0000-def000000016', 'CpuProfileCreator', 'Cpu Profile Creation/Deletion/Updating and Operation', 'ADMIN', false, 1, [1666, 1665, 1667, 1668]],
];

export const ROLES: readonly Role[] = TABLE.map(([id, name, description, type, allowsViewingChildren, appMode, permitIds]) => ({
  id,
  name,
  description,
  type,
  allowsViewingChildren,
  appMode,
  readonly: true,
  permitIds,
}));

const byId = new Map(ROLES.map((r) => [r.id, r]));
const byName = new Map(ROLES.map((r) => [r.name.toLowerCase(), r]));

export function roleById(id: string): Role | undefined {
  return byId.get(id.toLowerCase());
}

export function roleByName(name: string): Role | undefined {
  return byName.get(name.toLowerCase());
}

/** A role by id or name; throws for test code that names one that does not exist. */
export function role(idOrName: string): Role {
  const r = roleById(idOrName) ?? roleByName(idOrName);
  if (!r) throw new Error(`engine simulator has no role ${idOrName}`);
  return r;
}

export function permitsOf(r: Role): Permit[] {
  return r.permitIds.map(permitById).filter((p): p is Permit => p !== undefined);
}

/** Whether the engine lists the role (and its grants) in this application mode. */
export function inAppMode(r: Role): boolean {
  return (r.appMode & APP_MODE) > 0;
}

/** `permit` as BackendPermitsResource writes it (PermitMapper + the role as parent). */
export function permitView(roleId: string, p: Permit): Wire {
  return {
    href: `${API}/roles/${roleId}/permits/${p.id}`,
    id: String(p.id),
    name: p.name,
    administrative: s(p.type === 'ADMIN'),
    role: ref('roles', roleId),
  };
}

/** `role` as RoleMapper writes it; `withPermits` inlines them (`follow=permits`). */
export function roleView(r: Role, withPermits = false): Wire {
  const base = `${API}/roles/${r.id}`;
  const permits = permitsOf(r);
  return {
    href: base,
    id: r.id,
    name: r.name,
    description: r.description,
    link: links(base, ['permits']),
    administrative: s(r.type === 'ADMIN'),
    mutable: s(!r.readonly),
    ...(withPermits ? { permits: permits.length ? { permit: permits.map((p) => permitView(r.id, p)) } : {} } : {}),
  };
}

/**
 * One `role` of `GET /users/{id}/roles` as the engine writes it: BackendAssignedRolesResource
 * maps each system permission with PermissionMapper (Permission → Role), which sets only the
 * role's id and name (no `administrative`, no `mutable`: those come with `GET /roles/{id}`),
 * then adds the href under the user, the user as parent and the `permits` link.
 */
export function assignedRoleView(userId: string, r: { id: string; name: string }): Wire {
  const base = `${API}/users/${userId}/roles/${r.id}`;
  return { href: base, id: r.id, name: r.name, link: links(base, ['permits']), user: ref('users', userId) };
}
