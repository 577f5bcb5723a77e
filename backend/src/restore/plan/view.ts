import type { RestorePlanView } from '../model';
import type { RestoreInventory, RestorePlan, UsableTargets } from './types';

/** The plan as the restore dialog shows it (no OVF text) with the choices it offers: the VMs the
 *  user may see as attach targets, and (with `usable`) only the clusters and storage domains
 *  they may create in. */
export function planView(plan: RestorePlan, inventory: RestoreInventory, visibleVmIds: ReadonlySet<string>, usable?: UsableTargets): RestorePlanView {
  return {
    pointId: plan.pointId,
    sourceVm: plan.sourceVm,
    mode: plan.mode,
    vm: plan.vm && {
      name: plan.vm.name,
      clusterId: plan.vm.clusterId,
      clusterName: plan.vm.clusterName,
      regenerateIds: plan.vm.regenerateIds,
      regenerateMacs: plan.vm.regenerateMacs,
      description: plan.vm.description,
      nics: plan.vm.nics,
    },
    attachToVmId: plan.attachToVmId,
    useProxy: plan.useProxy,
    disks: plan.disks.map((d) => ({
      device: d.device,
      diskId: d.diskId,
      name: d.name,
      storageDomainId: d.storageDomainId,
      storageDomainName: d.storageDomainName,
      format: d.format,
      sparse: d.sparse,
      provisionedSize: d.provisionedSize,
      dataBytes: d.dataBytes,
      interface: d.interface,
      bootable: d.bootable,
    })),
    problems: plan.problems,
    ok: plan.ok,
    targets: {
      clusters: usable ? inventory.clusters.filter((c) => usable.clusterIds.has(c.id)) : inventory.clusters,
      storageDomains: (usable ? inventory.storageDomains.filter((s) => usable.storageDomainIds.has(s.id)) : inventory.storageDomains).map((s) => ({ id: s.id, name: s.name, availableBytes: s.availableBytes, usable: s.type === 'data' && s.status === 'active' })),
      vms: inventory.vms.filter((v) => visibleVmIds.has(v.id)).map((v) => ({ id: v.id, name: v.name })),
    },
  };
}
