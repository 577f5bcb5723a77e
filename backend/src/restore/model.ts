/**
 * A restore as its callers see it: what is asked (`RestoreRequestBody`, the dialog's and the
 * CLI's choices), the problems a plan finds, and the plan as the dialog shows it
 * (`RestorePlanView`). Browser-safe types: the UI plugin reads them through api/contract.ts.
 * The planner's own working types are in plan/types.ts.
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

/** What to restore from a point (body of `POST /points/:pointId/restore[/plan]`). */
export interface RestoreRequestBody {
  mode: RestoreMode;
  /** vm mode: the target cluster (id); default: the original's cluster. */
  clusterId?: string;
  /** vm mode: the new VM's name; default `<original>-restored`. */
  vmName?: string;
  /** vm mode: create the VM from the stored OVF (default true); false = disks only, floating. */
  fromOvf?: boolean;
  /** vm mode: new VM id (default true). False brings back an absent VM with its own ids. */
  regenerateIds?: boolean;
  /** vm mode: new MAC addresses from the cluster's pool (default true). */
  regenerateMacs?: boolean;
  /** disks mode: attach the new disks to this VM; absent = leave them floating. */
  attachToVmId?: string;
  /** Upload through the engine's imageio proxy instead of the host's daemon. */
  useProxy?: boolean;
  disks?: RestoreDiskChoice[];
}

/** A request for one point. */
export interface RestoreRequest extends RestoreRequestBody {
  pointId: string;
}

export type ProblemSeverity = 'error' | 'warning';

/** Everything a plan can find wrong (or worth a warning). */
export const RESTORE_PROBLEM_CODES = [
  'POINT_NOT_RESTORABLE',
  'NO_OVF',
  'NO_DISKS',
  'VM_NAME_EXISTS',
  'VM_ID_EXISTS',
  'MAC_IN_USE',
  'VNIC_PROFILE_MISSING',
  'CLUSTER_NOT_FOUND',
  'STORAGE_DOMAIN_NOT_FOUND',
  'STORAGE_DOMAIN_NOT_USABLE',
  'STORAGE_DOMAIN_FULL',
  'DISK_ID_EXISTS',
  'DISK_FORMAT_CHANGED',
  'TARGET_VM_NOT_FOUND',
  'UNKNOWN_DISK',
] as const;

export interface RestoreProblem {
  severity: ProblemSeverity;
  code: (typeof RESTORE_PROBLEM_CODES)[number];
  message: string;
  /** What it is about: a disk device, a NIC name, a storage domain id... */
  subject?: string;
}

/** A problem as the API sends it: clients must take codes they do not know (newer planners
 *  add some), so the wire type is a string. */
export type RestoreProblemView = Omit<RestoreProblem, 'code'> & { code: string };

export interface PlannedNic {
  name: string;
  /** The MAC kept (not regenerating) or null (a new one from the pool). */
  mac: string | null;
  network: string | null;
  vnicProfileId: string | null;
}

/** The VM a restore creates (vm mode from the stored OVF), as planned. */
export interface PlannedVm {
  name: string;
  clusterId: string;
  clusterName: string;
  regenerateIds: boolean;
  regenerateMacs: boolean;
  description: string;
  nics: PlannedNic[];
}

/** What a restore will do, for the dialog to show before anything is written (no OVF text). */
export interface RestorePlanView {
  pointId: string;
  sourceVm: { id: string; name: string };
  mode: RestoreMode;
  vm: PlannedVm | null;
  attachToVmId: string | null;
  useProxy: boolean;
  disks: Array<{
    device: string;
    diskId: string;
    name: string;
    storageDomainId: string;
    storageDomainName: string;
    format: 'cow' | 'raw';
    sparse: boolean;
    provisionedSize: number;
    dataBytes: number;
    interface: string;
    bootable: boolean;
  }>;
  problems: RestoreProblemView[];
  ok: boolean;
  /** The choices the dialog offers. */
  targets: {
    clusters: Array<{ id: string; name: string }>;
    storageDomains: Array<{ id: string; name: string; availableBytes: number | null; usable: boolean }>;
    vms: Array<{ id: string; name: string }>;
  };
}
