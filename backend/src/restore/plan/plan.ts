import { randomUUID } from 'crypto';
import { describeError } from '../../errors';
import { parseOvf, type OvfSummary } from '../../engine';
import { readDiskMeta, readPointMeta, type Manifest, type ManifestDisk } from '../../repository';
import { rewriteOvf } from './ovfRewrite';
import type { PlannedDisk, PlannedNic, RestoreInventory, RestorePlan, RestoreProblem, RestoreRequest, UsableTargets } from './types';

const MiB = 1 << 20;

export interface PlanInput {
  manifest: Manifest;
  /** Non-zero bytes of each disk of the point (from its index), by device. */
  dataBytes: Record<string, number>;
  request: RestoreRequest;
  inventory: RestoreInventory;
  /** Only these clusters and domains are chosen or named (a portal user's restore); absent:
   *  every one the inventory has (a backup admin, the operator's CLI). */
  usable?: UsableTargets;
  /** New ids come from here (tests pass a predictable source). */
  newId?: () => string;
}

/**
 * Decides a restore without touching anything: which disks to create where and how, the OVF to
 * submit, and every problem the engine would otherwise hit half-way (a name taken, a MAC in use,
 * a domain without room, a vNIC profile the cluster lacks). Pure: same input, same plan.
 */
export function planRestore(input: PlanInput): RestorePlan {
  const { manifest: m, request: req, inventory: inv } = input;
  const newId = input.newId ?? randomUUID;
  const problems: RestoreProblem[] = [];
  const error = (code: RestoreProblem['code'], message: string, subject?: string): void => void problems.push({ severity: 'error', code, message, ...(subject ? { subject } : {}) });
  const warn = (code: RestoreProblem['code'], message: string, subject?: string): void => void problems.push({ severity: 'warning', code, message, ...(subject ? { subject } : {}) });
  const sourceVm = { id: m.vm.id ?? m.vm.key, name: m.vm.name };
  const engineMeta = readPointMeta(m).engine;

  let ovf: OvfSummary | undefined;
  if (m.vmDefinition?.kind === 'ovf') {
    try {
      ovf = parseOvf(m.vmDefinition.content);
    } catch (err) {
      warn('NO_OVF', `the vm definition stored in the point cannot be read: ${describeError(err)}`);
    }
  }
  const mode = req.mode;
  const fromOvf = mode === 'vm' && req.fromOvf !== false;
  const regenerateIds = req.regenerateIds !== false;
  const regenerateMacs = req.regenerateMacs !== false;
  if (fromOvf && !ovf) error('NO_OVF', `point ${m.pointId} holds no usable vm definition (ovf): restore its disks instead`);
  if (fromOvf && !regenerateIds && inv.vms.some((v) => v.id === sourceVm.id)) {
    error('VM_ID_EXISTS', `vm ${sourceVm.name} still exists: a restore with the original ids needs it gone; regenerate the ids to restore beside it`, sourceVm.id);
  }

  const { usable } = input;
  const clusters = usable ? inv.clusters.filter((c) => usable.clusterIds.has(c.id)) : inv.clusters;
  const domains = usable ? inv.storageDomains.filter((s) => usable.storageDomainIds.has(s.id)) : inv.storageDomains;
  const notYours = usable ? ' or not available to you' : '';
  // a user's restore goes elsewhere than a cluster hidden from them, without naming it
  const original = engineMeta?.clusterId;
  const originalHidden = usable !== undefined && original !== undefined && !clusters.some((c) => c.id === original) && inv.clusters.some((c) => c.id === original);
  const clusterId = req.clusterId ?? (originalHidden ? clusters[0]?.id : (original ?? clusters[0]?.id));
  const cluster = clusters.find((c) => c.id === clusterId);
  if (mode === 'vm' && fromOvf && !cluster) {
    error('CLUSTER_NOT_FOUND', clusterId === undefined && usable ? 'no cluster is available to you to create the vm in' : `cluster ${clusterId ?? '(none)'} not found${notYours}`, clusterId);
  } else if (mode === 'vm' && fromOvf && cluster && originalHidden && req.clusterId === undefined) {
    warn('CLUSTER_NOT_FOUND', `the vm's original cluster is not available to you: it is restored into cluster ${cluster.name}`, cluster.id);
  }
  const vmName = req.vmName?.trim() || `${sourceVm.name}-restored`;
  if (fromOvf && inv.vms.some((v) => v.name === vmName)) error('VM_NAME_EXISTS', `a vm named ${vmName} already exists: choose another name`, vmName);
  const attachTo = mode === 'disks' && req.attachToVmId ? req.attachToVmId : null;
  if (attachTo && !inv.vms.some((v) => v.id === attachTo)) error('TARGET_VM_NOT_FOUND', `vm ${attachTo} to attach the disks to was not found`, attachTo);

  for (const c of req.disks ?? []) {
    if (!m.disks.some((d) => d.device === c.device)) error('UNKNOWN_DISK', `point ${m.pointId} has no disk ${c.device}`, c.device);
  }

  const disks: PlannedDisk[] = [];
  const need = new Map<string, number>();
  let included = 0;
  for (const d of m.disks) {
    const choice = req.disks?.find((c) => c.device === d.device);
    if (choice && !choice.include) continue;
    included++;
    const planned = planDisk(d, choice, { ovf, m, inv, domains, notYours, mode, fromOvf, regenerateIds, vmName, newId, dataBytes: input.dataBytes[d.device] ?? d.virtualSize, error, warn });
    if (!planned) continue;
    disks.push(planned);
    need.set(planned.storageDomainId, (need.get(planned.storageDomainId) ?? 0) + spaceNeeded(planned));
  }
  // a disk that cannot be planned has said why: "none selected" only when none is
  if (included === 0) error('NO_DISKS', 'no disk is selected for the restore');
  for (const [sdId, bytes] of need) {
    const sd = inv.storageDomains.find((s) => s.id === sdId);
    if (sd?.availableBytes !== null && sd?.availableBytes !== undefined && sd.availableBytes < bytes) {
      error('STORAGE_DOMAIN_FULL', `storage domain ${sd.name} has ${gib(sd.availableBytes)} free, the restore needs ${gib(bytes)}`, sdId);
    }
  }

  let vm: RestorePlan['vm'] = null;
  if (fromOvf && ovf && cluster) {
    const nics = planNics(ovf, cluster.id, regenerateMacs, inv, sourceVm.id, error, warn);
    const description = `Restored by olvm-backup from ${sourceVm.name} at ${m.createdAt}`;
    let rewritten = '';
    try {
      rewritten = rewriteOvf(m.vmDefinition?.content ?? '', {
        name: vmName,
        description,
        clearMacs: regenerateMacs,
        disks: disks.map((p) => {
          const o = ovfDiskOf(ovf, m.disks.find((x) => x.device === p.device));
          return { fromDiskId: o?.diskId ?? '', fromImageId: o?.imageId ?? '', toDiskId: p.diskId, toImageId: p.imageId ?? '', storageDomainId: p.storageDomainId, alias: p.name };
        }),
      });
    } catch (err) {
      error('NO_OVF', `the stored vm definition cannot be adapted for the restore: ${describeError(err)}`);
    }
    vm = { name: vmName, clusterId: cluster.id, clusterName: cluster.name, regenerateIds, regenerateMacs, description, ovf: rewritten, nics };
  }

  return {
    pointId: m.pointId,
    sourceVm,
    mode,
    vm,
    attachToVmId: attachTo,
    useProxy: req.useProxy === true,
    disks,
    problems,
    ok: !problems.some((p) => p.severity === 'error'),
  };
}

interface DiskContext {
  ovf: OvfSummary | undefined;
  m: Manifest;
  inv: RestoreInventory;
  /** The domains the disk may go to (the usable ones of the inventory). */
  domains: RestoreInventory['storageDomains'];
  /** ' or not available to you' when some domains are hidden from the caller, else ''. */
  notYours: string;
  mode: RestoreRequest['mode'];
  fromOvf: boolean;
  regenerateIds: boolean;
  vmName: string;
  newId: () => string;
  dataBytes: number;
  error: (code: RestoreProblem['code'], message: string, subject?: string) => void;
  warn: (code: RestoreProblem['code'], message: string, subject?: string) => void;
}

function planDisk(d: ManifestDisk, choice: { name?: string; storageDomainId?: string } | undefined, c: DiskContext): PlannedDisk | undefined {
  const o = ovfDiskOf(c.ovf, d);
  const meta = readDiskMeta(d);
  const originalId = meta.diskId;
  const alias = meta.alias ?? o?.alias ?? d.device;
  if (c.fromOvf && !o) {
    c.error('NO_OVF', `disk ${alias} is not in the stored vm definition`, d.device);
    return undefined;
  }
  // the original ids are kept only to bring back a VM that is gone, as it was
  const keepIds = c.mode === 'vm' && c.fromOvf && !c.regenerateIds && originalId !== undefined;
  if (keepIds && c.inv.diskIds.includes(originalId)) c.error('DISK_ID_EXISTS', `disk ${alias} (${originalId}) still exists in the engine`, d.device);
  const name = choice?.name?.trim() || renamed(alias, c.m.vm.name, c.mode === 'vm' ? c.vmName : `${c.m.vm.name}-restored`);

  const sdId = choice?.storageDomainId ?? o?.storageDomainId;
  let sd = c.domains.find((s) => s.id === sdId);
  if (choice?.storageDomainId && !sd) {
    c.error('STORAGE_DOMAIN_NOT_FOUND', `storage domain ${choice.storageDomainId} not found${c.notYours}`, d.device);
    return undefined;
  }
  if (sd && (sd.type !== 'data' || sd.status !== 'active')) {
    if (choice?.storageDomainId) c.error('STORAGE_DOMAIN_NOT_USABLE', `storage domain ${sd.name} is not an active data domain`, d.device);
    sd = undefined;
  }
  // the original domain hidden from the caller: another one, and its name is not said
  const originalHidden = c.notYours !== '' && !choice?.storageDomainId && sdId !== undefined && !c.domains.some((s) => s.id === sdId) && c.inv.storageDomains.some((s) => s.id === sdId);
  sd ??= c.domains.find((s) => s.type === 'data' && s.status === 'active' && (s.availableBytes === null || s.availableBytes >= c.dataBytes));
  if (!sd) {
    c.error('STORAGE_DOMAIN_NOT_FOUND', `no active data storage domain${c.notYours ? ' available to you' : ''} with room for disk ${alias}`, d.device);
    return undefined;
  }
  if (originalHidden) c.warn('STORAGE_DOMAIN_NOT_USABLE', `disk ${alias}: its original storage domain is not available to you; it is restored on ${sd.name}`, d.device);

  const format: 'cow' | 'raw' = o?.format ?? (d.format === 'qcow2' ? 'cow' : 'raw');
  let sparse = o?.sparse ?? true;
  // combinations the engine refuses (reference §7.1)
  if (format === 'raw' && sparse && sd.isBlock) {
    sparse = false;
    c.warn('DISK_FORMAT_CHANGED', `disk ${name}: raw disks on block storage are preallocated`, d.device);
  }
  let backup: 'incremental' | 'none' = format === 'cow' && o?.incrementalBackup !== false ? 'incremental' : 'none';
  if (format === 'cow' && !sparse && backup === 'none') {
    sparse = true;
    c.warn('DISK_FORMAT_CHANGED', `disk ${name}: a preallocated qcow2 disk needs incremental backup; restored as sparse`, d.device);
  }
  if (format === 'raw') backup = 'none';
  return {
    device: d.device,
    diskId: keepIds ? originalId : c.newId(),
    imageId: keepIds ? (o?.imageId ?? c.newId()) : c.fromOvf ? c.newId() : null,
    name,
    description: `Restored by olvm-backup from ${c.m.vm.name} (${alias}) at ${c.m.createdAt}`,
    storageDomainId: sd.id,
    storageDomainName: sd.name,
    format,
    sparse,
    backup,
    provisionedSize: d.virtualSize,
    // qcow2 metadata: an L2 entry per 64 KiB cluster and refcounts, plus a margin
    initialSize: format === 'cow' && sparse && sd.isBlock ? Math.ceil((c.dataBytes + d.virtualSize / 8192 + 4 * MiB) * 1.1) : null,
    dataBytes: c.dataBytes,
    interface: o?.interface ?? 'virtio',
    bootable: o?.boot ?? false,
  };
}

function planNics(
  ovf: OvfSummary,
  clusterId: string,
  regenerateMacs: boolean,
  inv: RestoreInventory,
  sourceVmId: string,
  error: (code: RestoreProblem['code'], message: string, subject?: string) => void,
  warn: (code: RestoreProblem['code'], message: string, subject?: string) => void,
): PlannedNic[] {
  return ovf.nics.map((n) => {
    const profile = inv.vnicProfiles.find(
      (p) => p.clusterIds.includes(clusterId) && (n.vnicProfile === undefined || p.name === n.vnicProfile) && (n.network === undefined || p.networkName === n.network),
    );
    if ((n.network || n.vnicProfile) && !profile) {
      warn('VNIC_PROFILE_MISSING', `nic ${n.name}: the target cluster has no vnic profile ${n.vnicProfile ?? '?'} on network ${n.network ?? '?'}; it is restored unplugged from any network`, n.name);
    }
    const mac = regenerateMacs ? null : (n.mac ?? null);
    if (mac) {
      const user = inv.vms.find((v) => v.macs.some((x) => x.toLowerCase() === mac.toLowerCase()));
      // only the original is named: the plan is shown to users who may not see the other vms
      if (user) error('MAC_IN_USE', `nic ${n.name}: mac ${mac} is in use by ${user.id === sourceVmId ? `vm ${user.name} (the original)` : 'another vm'}; regenerate the mac addresses`, n.name);
    }
    return { name: n.name, mac, network: n.network ?? null, vnicProfileId: profile?.id ?? null };
  });
}

function ovfDiskOf(ovf: OvfSummary | undefined, d: ManifestDisk | undefined): OvfSummary['disks'][number] | undefined {
  const id = d ? readDiskMeta(d).diskId : undefined;
  return id ? ovf?.disks.find((o) => o.diskId === id && o.imageId !== undefined) : undefined;
}

/** `web01_Disk1` of web01 restored as web01-restored → `web01-restored_Disk1`. */
function renamed(alias: string, from: string, to: string): string {
  return alias.startsWith(from) ? `${to}${alias.slice(from.length)}` : `${alias}-restored`;
}

/** Sparse disks take what is written; preallocated ones their whole size. */
function spaceNeeded(d: PlannedDisk): number {
  return d.sparse ? (d.initialSize ?? d.dataBytes) : d.provisionedSize;
}

function gib(n: number): string {
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
