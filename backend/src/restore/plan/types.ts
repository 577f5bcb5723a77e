/**
 * A restore into the engine, decided before anything is written: what the user asked
 * (`RestoreRequest`, in ../model.ts), what the engine looks like now (`RestoreInventory`), and
 * the outcome of planning (`RestorePlan`: the disks to create, the OVF to submit, every problem
 * found). The executor does exactly what a plan without blocking problems says.
 */
import type { PlannedVm, RestoreMode, RestoreProblem } from '../model';

export type { PlannedNic, PlannedVm, RestoreDiskChoice, RestoreMode, RestoreProblem, RestoreRequest, ProblemSeverity } from '../model';

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

/**
 * The clusters and storage domains a caller may create in (a portal user's restore): the planner
 * picks, names and offers only these, and says of any other it meets (the VM's original cluster,
 * a disk's original domain) only that it is not available to them — not its name.
 */
export interface UsableTargets {
  clusterIds: ReadonlySet<string>;
  storageDomainIds: ReadonlySet<string>;
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

export interface RestorePlan {
  pointId: string;
  sourceVm: { id: string; name: string };
  mode: RestoreMode;
  /** vm mode with fromOvf: the VM to create, with the OVF to submit (rewritten: new disk ids,
   *  name, MACs cleared when regenerating); null otherwise. */
  vm: (PlannedVm & { ovf: string }) | null;
  attachToVmId: string | null;
  useProxy: boolean;
  disks: PlannedDisk[];
  problems: RestoreProblem[];
  /** No problem of severity `error`. */
  ok: boolean;
}
