/**
 * The engine's permits (ActionGroup.java in ovirt-engine: backend/manager/modules/common/src/main/
 * java/org/ovirt/engine/core/common/businessentities/ActionGroup.java): numeric id, REST name (the
 * enum name lower-cased, as PermitMapper writes it), USER or ADMIN type, and whether a role holding
 * it may let its holder see the objects below. Data only; the rules that use it are in access.ts.
 */

export type RoleType = 'USER' | 'ADMIN';

export interface Permit {
  id: number;
  /** `create_vm`: ActionGroup.name().toLowerCase() */
  name: string;
  type: RoleType;
  allowsViewingChildren: boolean;
}

// [id, name, type, allowsViewingChildren], in the enum's order
const TABLE: Array<[number, string, RoleType, boolean]> = [
  [1, 'create_vm', 'USER', false],
  [2, 'delete_vm', 'USER', true],
  [3, 'edit_vm_properties', 'USER', true],
  [17, 'reboot_vm', 'USER', true],
  [23, 'reset_vm', 'USER', true],
  [18, 'stop_vm', 'USER', true],
  [19, 'shut_down_vm', 'USER', true],
  [21, 'hibernate_vm', 'USER', true],
  [22, 'run_vm', 'USER', true],
  [5, 'change_vm_cd', 'USER', true],
  [6, 'migrate_vm', 'USER', true],
  [1664, 'connect_to_serial_console', 'USER', true],
  [7, 'connect_to_vm', 'USER', true],
  [8, 'import_export_vm', 'ADMIN', true],
  [9, 'configure_vm_network', 'USER', true],
  [10, 'configure_vm_storage', 'USER', true],
  [11, 'move_vm', 'USER', true],
  [12, 'manipulate_vm_snapshots', 'USER', true],
  [13, 'reconnect_to_vm', 'USER', true],
  [14, 'change_vm_custom_properties', 'ADMIN', true],
  [15, 'edit_admin_vm_properties', 'ADMIN', true],
  [16, 'create_instance', 'USER', false],
  [100, 'create_host', 'ADMIN', true],
  [101, 'edit_host_configuration', 'ADMIN', true],
  [102, 'delete_host', 'ADMIN', true],
  [103, 'manipulate_host', 'ADMIN', true],
  [104, 'configure_host_network', 'ADMIN', true],
  [200, 'create_template', 'USER', false],
  [201, 'edit_template_properties', 'USER', true],
  [202, 'delete_template', 'USER', true],
  [203, 'copy_template', 'USER', true],
  [204, 'configure_template_network', 'USER', true],
  [205, 'edit_admin_template_properties', 'ADMIN', true],
  [300, 'create_vm_pool', 'USER', false],
  [301, 'edit_vm_pool_configuration', 'USER', true],
  [302, 'delete_vm_pool', 'USER', true],
  [303, 'vm_pool_basic_operations', 'USER', true],
  [400, 'create_cluster', 'ADMIN', true],
  [401, 'edit_cluster_configuration', 'ADMIN', true],
  [402, 'delete_cluster', 'ADMIN', true],
  [403, 'configure_cluster_network', 'ADMIN', true],
  [404, 'assign_cluster_network', 'ADMIN', true],
  [500, 'manipulate_users', 'ADMIN', true],
  [501, 'manipulate_roles', 'ADMIN', true],
  [502, 'manipulate_permissions', 'USER', true],
  [503, 'add_users_and_groups_from_directory', 'USER', true],
  [504, 'edit_profile', 'USER', true],
  [600, 'create_storage_domain', 'ADMIN', true],
  [601, 'edit_storage_domain_configuration', 'ADMIN', true],
  [602, 'delete_storage_domain', 'ADMIN', true],
  [603, 'manipulate_storage_domain', 'ADMIN', true],
  [700, 'create_storage_pool', 'ADMIN', true],
  [701, 'delete_storage_pool', 'ADMIN', true],
  [702, 'edit_storage_pool_configuration', 'ADMIN', true],
  [703, 'configure_storage_pool_network', 'ADMIN', true],
  [704, 'create_storage_pool_network', 'ADMIN', true],
  [705, 'delete_storage_pool_network', 'ADMIN', true],
  [800, 'configure_engine', 'ADMIN', true],
  [900, 'configure_quota', 'ADMIN', true],
  [901, 'consume_quota', 'USER', true],
  [1000, 'create_gluster_volume', 'ADMIN', true],
  [1001, 'manipulate_gluster_volume', 'ADMIN', true],
  [1002, 'delete_gluster_volume', 'ADMIN', true],
  [1003, 'manipulate_gluster_hook', 'ADMIN', true],
  [1004, 'manipulate_gluster_service', 'ADMIN', true],
  [1100, 'create_disk', 'USER', false],
  [1101, 'attach_disk', 'USER', true],
  [1102, 'edit_disk_properties', 'USER', true],
  [1103, 'configure_disk_storage', 'USER', true],
  [1104, 'delete_disk', 'USER', true],
  [1105, 'configure_scsi_generic_io', 'ADMIN', true],
  [1106, 'access_image_storage', 'USER', false],
  [1107, 'disk_live_storage_migration', 'USER', true],
  [1108, 'sparsify_disk', 'USER', true],
  [1109, 'reduce_disk', 'ADMIN', true],
  [1110, 'backup_disk', 'ADMIN', true],
  [1203, 'configure_network_vnic_profile', 'ADMIN', true],
  [1204, 'create_network_vnic_profile', 'ADMIN', true],
  [1205, 'delete_network_vnic_profile', 'ADMIN', true],
  [1300, 'login', 'USER', false],
  [1400, 'inject_external_events', 'ADMIN', false],
  [1500, 'inject_external_tasks', 'ADMIN', false],
  [1301, 'tag_management', 'ADMIN', false],
  [1302, 'bookmark_management', 'ADMIN', false],
  [1303, 'event_notification_management', 'ADMIN', false],
  [1304, 'audit_log_management', 'ADMIN', false],
  [1550, 'manipulate_affinity_groups', 'ADMIN', true],
  [1560, 'configure_storage_disk_profile', 'ADMIN', true],
  [1561, 'create_storage_disk_profile', 'ADMIN', true],
  [1562, 'delete_storage_disk_profile', 'ADMIN', true],
  [1563, 'attach_disk_profile', 'USER', true],
  [1660, 'create_mac_pool', 'ADMIN', true],
  [1661, 'edit_mac_pool', 'ADMIN', true],
  [1662, 'delete_mac_pool', 'ADMIN', true],
  [1663, 'configure_mac_pool', 'ADMIN', true],
  [1665, 'delete_cpu_profile', 'ADMIN', true],
  [1666, 'update_cpu_profile', 'ADMIN', true],
  [1667, 'create_cpu_profile', 'ADMIN', true],
  [1668, 'assign_cpu_profile', 'ADMIN', true],
];

export const PERMITS: readonly Permit[] = TABLE.map(([id, name, type, allowsViewingChildren]) => ({ id, name, type, allowsViewingChildren }));

const byId = new Map(PERMITS.map((p) => [p.id, p]));
const byName = new Map(PERMITS.map((p) => [p.name, p]));

export function permitById(id: number): Permit | undefined {
  return byId.get(id);
}

/** By REST name; PermitMapper also accepts any case (it upper-cases to find the enum). */
export function permitByName(name: string): Permit | undefined {
  return byName.get(name.toLowerCase());
}
