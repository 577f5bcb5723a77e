/**
 * The engine's entities as the rest of the backend sees them: camelCase, typed, sizes in bytes
 * as numbers, dates as Date, lists always present. Only the fields a backup / restore product
 * needs; the wire names live in parse/*.ts (reference/ovirt-api.md §2-3).
 */

/** `api.product_info.version` */
export interface ProductVersion {
  major: number;
  minor: number;
  build: number;
  revision: number;
  fullVersion: string;
}

/** `GET /ovirt-engine/api` */
export interface ApiInfo {
  productName: string | undefined;
  vendor: string | undefined;
  version: ProductVersion | undefined;
  /** The user the token belongs to (who is calling). */
  authenticatedUserId: string | undefined;
  effectiveUserId: string | undefined;
  time: Date | undefined;
}

export const VM_STATUSES = [
  'unassigned',
  'down',
  'up',
  'powering_up',
  'paused',
  'migrating',
  'unknown',
  'not_responding',
  'wait_for_launch',
  'reboot_in_progress',
  'saving_state',
  'restoring_state',
  'suspended',
  'image_locked',
  'powering_down',
] as const;
export type VmStatus = (typeof VM_STATUSES)[number];

export interface CustomProperty {
  name: string;
  value: string;
}

export interface Vm {
  id: string;
  name: string;
  description: string;
  comment: string;
  /** Unrecognised status values are reported as 'unknown'. */
  status: VmStatus;
  statusDetail: string | undefined;
  stopReason: string | undefined;
  /** desktop | server | high_performance */
  type: string | undefined;
  memoryBytes: number | undefined;
  cpu: { sockets: number; cores: number; threads: number; architecture: string | undefined } | undefined;
  osType: string | undefined;
  bootDevices: string[];
  stateless: boolean | undefined;
  creationTime: Date | undefined;
  startTime: Date | undefined;
  stopTime: Date | undefined;
  clusterId: string | undefined;
  /** The host the VM runs on; absent when it is not running, and always absent in filtered
   *  (user-level) replies. */
  hostId: string | undefined;
  templateId: string | undefined;
  originalTemplateId: string | undefined;
  customProperties: CustomProperty[];
  nextRunConfigurationExists: boolean | undefined;
  hasIllegalImages: boolean | undefined;
  /** The VM definition; present only when read with allContent. */
  configuration: { type: string; data: string } | undefined;
  /** Present only when read with the corresponding `follow`. */
  diskAttachments: DiskAttachment[] | undefined;
  nics: Nic[] | undefined;
  tags: Tag[] | undefined;
}

export const DISK_INTERFACES = ['ide', 'virtio_scsi', 'virtio', 'spapr_vscsi', 'sata'] as const;
export type DiskInterface = (typeof DISK_INTERFACES)[number];

export type DiskFormat = 'cow' | 'raw';

export const DISK_STATUSES = ['ok', 'locked', 'illegal'] as const;
export type DiskStatus = (typeof DISK_STATUSES)[number];

export interface Disk {
  id: string;
  /** `alias` (the engine's `name` is the same value, deprecated). */
  alias: string;
  description: string;
  /** Active volume; absent for LUN disks. */
  imageId: string | undefined;
  /** Virtual size in bytes; absent for LUN disks (see lunSize). */
  provisionedSize: number | undefined;
  actualSize: number | undefined;
  totalSize: number | undefined;
  initialSize: number | undefined;
  format: DiskFormat | undefined;
  sparse: boolean | undefined;
  qcowVersion: string | undefined;
  /** none | incremental: whether the engine's own incremental backup is enabled. */
  backup: string | undefined;
  backupMode: string | undefined;
  status: DiskStatus | undefined;
  /** image | lun | cinder | managed_block_storage */
  storageType: string | undefined;
  /** data | ovf_store | memory_dump_volume | ... | backup_scratch */
  contentType: string | undefined;
  shareable: boolean | undefined;
  wipeAfterDelete: boolean | undefined;
  propagateErrors: boolean | undefined;
  storageDomainIds: string[];
  diskProfileId: string | undefined;
  /** Direct LUN: the logical unit id and size (bytes) when the engine sends them. */
  lun: { id: string; size: number | undefined } | undefined;
}

/** `vms/{id}/diskattachments` item: where and how a disk is plugged into one VM. */
export interface DiskAttachment {
  /** Same as the disk id. */
  id: string;
  diskId: string;
  vmId: string | undefined;
  bootable: boolean;
  interface: DiskInterface | undefined;
  active: boolean;
  passDiscard: boolean | undefined;
  readOnly: boolean;
  usesScsiReservation: boolean | undefined;
  /** Guest device name, reported by the guest agent. */
  logicalName: string | undefined;
  /** The disk itself when the engine inlined it (follow=disk). */
  disk: Disk | undefined;
}

/** A VM's disk as a backup needs it: the attachment plus the disk, always both. */
export interface VmDisk extends Omit<DiskAttachment, 'disk'> {
  disk: Disk;
}

export interface Nic {
  id: string;
  name: string;
  /** e1000 | e1000e | virtio | rtl8139 | rtl8139_virtio | spapr_vlan | pci_passthrough */
  interface: string | undefined;
  mac: string | undefined;
  linked: boolean | undefined;
  plugged: boolean | undefined;
  vnicProfileId: string | undefined;
  /** Present when inlined (follow=vnic_profile). */
  vnicProfile: VnicProfile | undefined;
}

export interface VnicProfile {
  id: string;
  name: string;
  networkId: string | undefined;
  /** Present when inlined (follow=network). */
  networkName: string | undefined;
}

export interface Network {
  id: string;
  name: string;
  dataCenterId: string | undefined;
}

export const HOST_STATUSES = [
  'down',
  'error',
  'initializing',
  'installing',
  'install_failed',
  'maintenance',
  'non_operational',
  'non_responsive',
  'pending_approval',
  'preparing_for_maintenance',
  'connecting',
  'reboot',
  'unassigned',
  'up',
  'installing_os',
  'kdumping',
] as const;
/** Unrecognised status values are reported as 'unassigned'. */
export type HostStatus = (typeof HOST_STATUSES)[number];

export interface Host {
  id: string;
  name: string;
  /** FQDN or IP the engine reaches the host by. */
  address: string;
  status: HostStatus;
  clusterId: string | undefined;
  libvirtVersion: string | undefined;
  vdsmVersion: string | undefined;
  memoryBytes: number | undefined;
}

export interface Cluster {
  id: string;
  name: string;
  description: string;
  version: { major: number; minor: number } | undefined;
  cpuType: string | undefined;
  cpuArchitecture: string | undefined;
  dataCenterId: string | undefined;
  macPoolId: string | undefined;
}

export interface StorageDomain {
  id: string;
  name: string;
  /** data | iso | export | image | volume | managed_block_storage */
  type: string | undefined;
  /** Absent when listed outside a data center for an attached domain. */
  status: string | undefined;
  externalStatus: string | undefined;
  availableBytes: number | undefined;
  usedBytes: number | undefined;
  committedBytes: number | undefined;
  master: boolean | undefined;
  storageFormat: string | undefined;
  blockSize: number | undefined;
  backup: boolean | undefined;
  /** iscsi | fcp | nfs | localfs | posixfs | glusterfs | ... */
  storageType: string | undefined;
  storageAddress: string | undefined;
  storagePath: string | undefined;
  /** iSCSI / FC: raw + sparse is not allowed there (reference §3.5, §7.1). */
  isBlock: boolean;
  dataCenterIds: string[];
}

export interface Tag {
  id: string;
  name: string;
  description: string;
  parentId: string | undefined;
}

export interface User {
  id: string;
  /** `user@authz`, e.g. `admin@internal-authz` (not the login profile `admin@internal`). */
  userName: string;
  principal: string | undefined;
  namespace: string | undefined;
  domainName: string | undefined;
  domainEntryId: string | undefined;
  firstName: string | undefined;
  lastName: string | undefined;
  email: string | undefined;
}

/**
 * A role a user holds on the whole system (`GET /users/{id}/roles`). The engine lists only
 * system-level permissions there: the user's, his directory groups' and Everyone's
 * (GetPermissionsOnBehalfByAdElementIdQuery); a filtered caller gets an answer about himself
 * only. It names each role by id and name only (no `administrative`).
 */
export interface SystemRole {
  id: string;
  name: string | undefined;
}

/** The predefined SuperUser role (PredefinedRoles.SUPER_USER): every permission everywhere. */
export const SUPER_USER_ROLE_ID = '00000000-0000-0000-0000-000000000001';

/**
 * An object permissions are granted on (reference ovirt-permissions.md §1): one of the kinds
 * `GET /{objects}/{id}/permissions` serves, or the whole system (`GET /permissions`).
 */
export type PermitObject = { kind: 'vm' | 'cluster' | 'datacenter' | 'storagedomain' | 'disk' | 'template'; id: string } | { kind: 'system' };

/**
 * One entry of an object's permission list, with its role's permits (`follow=role.permits`). The
 * engine lists grants inherited from ancestors as if made on the object itself, and may list
 * other principals' grants even to a filtered caller: match `principal` before using an entry
 * (reference §3.1, §5; see permitsOf).
 */
export interface PermissionEntry {
  id: string;
  roleId: string;
  roleName: string;
  /** The role is ADMIN-type (granting it makes its holders engine admins). */
  administrative: boolean;
  /** Permit names (`create_vm`, `backup_disk`, ...). */
  permits: string[];
  /** Ids are lower case. */
  principal: { kind: 'user' | 'group'; id: string };
}

/** An engine group (`GET /groups`): the engine's id and the directory's, as the engine encodes it. */
export interface EngineGroup {
  id: string;
  name: string;
  /** Hex-encoded directory id (upper case), what `GET /users/{id}/groups` calls `id`. */
  domainEntryId: string | undefined;
  domainName: string | undefined;
}

/** A directory group of a user (`GET /users/{id}/groups`). */
export interface DirectoryGroup {
  /** Hex-encoded directory id, not an engine id. */
  id: string;
  name: string | undefined;
  domainName: string | undefined;
}

export type EventSeverity = 'normal' | 'warning' | 'error' | 'alert';

export interface EngineEvent {
  id: string;
  index: number | undefined;
  code: number | undefined;
  severity: string | undefined;
  time: Date | undefined;
  description: string;
  origin: string | undefined;
  customId: number | undefined;
  correlationId: string | undefined;
  vmId: string | undefined;
  hostId: string | undefined;
  clusterId: string | undefined;
  storageDomainId: string | undefined;
}

/** `ImageTransferPhase` (reference §5.2); unrecognised values are reported as 'unknown'. */
export const IMAGE_TRANSFER_PHASES = [
  'unknown',
  'initializing',
  'transferring',
  'resuming',
  'paused_system',
  'paused_user',
  'cancelled',
  'cancelled_system',
  'cancelled_user',
  'finalizing_success',
  'finalizing_failure',
  'finished_success',
  'finished_failure',
  'finalizing_cleanup',
  'finished_cleanup',
] as const;
export type ImageTransferPhase = (typeof IMAGE_TRANSFER_PHASES)[number];

export type ImageTransferDirection = 'upload' | 'download';

/** `image_transfer` (reference §5.2). The data URLs are present only while `transferring`. */
export interface ImageTransfer {
  id: string;
  phase: ImageTransferPhase;
  direction: ImageTransferDirection | undefined;
  /** `raw` = imageio's NBD backend (guest data); `cow` = the stored qcow2 bytes. */
  format: DiskFormat | undefined;
  /** The host's imageio daemon (`https://<host>:54322/images/<ticket>`); the ticket is a credential. */
  transferUrl: string | undefined;
  /** The engine's imageio proxy (`https://<engine>:54323/images/<ticket>`). */
  proxyUrl: string | undefined;
  /** A client connection is live. */
  active: boolean | undefined;
  transferred: number | undefined;
  inactivityTimeoutSeconds: number | undefined;
  timeoutPolicy: string | undefined;
  hostId: string | undefined;
  /** The engine fills the deprecated `image` link rather than `disk`; either is read. */
  diskId: string | undefined;
  /** The engine backup whose disk a backup download reads (`backup` link). */
  backupId: string | undefined;
}

