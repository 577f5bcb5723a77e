/**
 * A restore into the engine, decided before anything is written: what the user asked
 * (`RestoreRequest`), what the engine looks like now (`RestoreInventory`), and the outcome of
 * planning (`RestorePlan`: the disks to create, the OVF to submit, every problem found). The
 * executor does exactly what a plan without blocking problems says.
 */

export type RestoreMode = 'vm' | 'disks';

export interface RestoreDiskChoice {
  /** The disk inside the point (QEMU device id, as in the manifest). */
  device: string;
  include: boolean;
  /** Name of the new disk; default: the original alias (+ the VM name suffix for a new VM). */
  name?: string;
  /** Target storage domain id; default: the original's domain when it exists, else the first data domain with room. */
  storageDomainId?: string;
}

export interface RestoreRequest {
  pointId: string;
  mode: RestoreMode;
  /** vm mode: the target cluster (id); default: the original's cluster. */
  clusterId?: string;
  /** vm mode: the new VM's name; default `<original>-restored`. */
  vmName?: string;
  /** vm mode: create the VM from the stored OVF (default true); false = disks only, floating. */
  fromOvf?: boolean;
  /** vm mode: new VM id (default true). False only when the original VM no longer exists. */
  regenerateIds?: boolean;
  /** vm mode: new MAC addresses from the cluster's pool (default true). */
  regenerateMacs?: boolean;
  /** disks mode: attach the new disks to this VM; absent = leave them floating. */
  attachToVmId?: string;
  /** Upload through the engine's imageio proxy instead of the host's daemon. */
  useProxy?: boolean;
  disks?: RestoreDiskChoice[];
}

/** What the planner needs to know about the engine, read just before planning. */
export interface RestoreInventory {
  clusters: Array<{ id: string; name: string }>;
  storageDomains: Array<{ id: string; name: string; type: 'data' | 'other'; status: 'active' | 'other'; isBlock: boolean; availableBytes: number | null }>;
  /** VMs by name and id, for collisions (name), the original's existence (id) and MACs in use. */
  vms: Array<{ id: string; name: string; macs: string[] }>;
  /** Existing disk ids (a disk restored with its original id must not collide). */
  diskIds: string[];
  /** vNIC profiles usable in each cluster (by network), for the OVF's NICs. */
  vnicProfiles: Array<{ id: string; name: string; networkName: string; clusterIds: string[] }>;
}

export type ProblemSeverity = 'error' | 'warning';

export interface RestoreProblem {
  severity: ProblemSeverity;
  code:
    | 'POINT_NOT_RESTORABLE'
    | 'NO_OVF'
    | 'NO_DISKS'
    | 'VM_NAME_EXISTS'
    | 'VM_ID_EXISTS'
    | 'MAC_IN_USE'
    | 'VNIC_PROFILE_MISSING'
    | 'CLUSTER_NOT_FOUND'
    | 'STORAGE_DOMAIN_NOT_FOUND'
    | 'STORAGE_DOMAIN_NOT_USABLE'
    | 'STORAGE_DOMAIN_FULL'
    | 'DISK_ID_EXISTS'
    | 'DISK_FORMAT_CHANGED'
    | 'TARGET_VM_NOT_FOUND'
    | 'UNKNOWN_DISK';
  message: string;
  /** What it is about: a disk device, a NIC name, a storage domain id... */
  subject?: string;
}

export interface PlannedDisk {
  device: string;
  /** Id the disk gets in the engine (the original's when restoring an absent VM with its ids). */
  diskId: string;
  /** Image (volume) id, when it must be fixed (an OVF references it). */
  imageId: string | null;
  name: string;
  description: string;
  storageDomainId: string;
  storageDomainName: string;
  /** Engine disk format: cow (qcow2) or raw, sparse or not, as the target domain allows. */
  format: 'cow' | 'raw';
  sparse: boolean;
  /** Enable the engine's incremental backup on the new disk (cow only). */
  backup: 'incremental' | 'none';
  provisionedSize: number;
  /** Sparse qcow2 on block storage needs room for the data up front; null elsewhere. */
  initialSize: number | null;
  /** Bytes of data (non-zero) the upload sends; zero ranges go as zero requests. */
  dataBytes: number;
  /** For attaching (disks mode) or for the OVF's own attachment. */
  interface: string;
  bootable: boolean;
}

export interface PlannedNic {
  name: string;
  /** The MAC kept (not regenerating) or null (a new one from the pool). */
  mac: string | null;
  network: string | null;
  vnicProfileId: string | null;
}

export interface RestorePlan {
  pointId: string;
  sourceVm: { id: string; name: string };
  mode: RestoreMode;
  /** vm mode with fromOvf: the VM to create; null otherwise. */
  vm: {
    name: string;
    clusterId: string;
    clusterName: string;
    regenerateIds: boolean;
    regenerateMacs: boolean;
    description: string;
    /** The OVF to submit, rewritten (new disk ids, name, MACs cleared when regenerating). */
    ovf: string;
    nics: PlannedNic[];
  } | null;
  attachToVmId: string | null;
  useProxy: boolean;
  disks: PlannedDisk[];
  problems: RestoreProblem[];
  /** No problem of severity `error`. */
  ok: boolean;
}
