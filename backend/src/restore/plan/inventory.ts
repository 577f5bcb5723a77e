import type { EngineClient } from '../../engine';
import type { PointSource } from '../pointSource';
import type { RestoreInventory } from './types';

/**
 * The engine as a restore plan needs it, read with the service account just before planning:
 * clusters, storage domains and their free space, every VM's name, id and MACs, disk ids, and
 * which vNIC profiles each cluster can use (those on networks of the cluster's data center).
 */
export async function readInventory(engine: EngineClient, signal?: AbortSignal): Promise<RestoreInventory> {
  const call = signal ? { signal } : {};
  const [clusters, domains, vms, networks, profiles] = await Promise.all([
    engine.listClusters(call),
    engine.listStorageDomains(call),
    engine.listVms({ withDisks: true, ...call }),
    engine.listNetworks(call),
    engine.listVnicProfiles(call),
  ]);
  const nics = await Promise.all(vms.map((vm) => engine.listVmNics(vm.id, call)));
  const netById = new Map(networks.map((n) => [n.id, n]));
  return {
    clusters: clusters.map((c) => ({ id: c.id, name: c.name })),
    storageDomains: domains.map((d) => ({
      id: d.id,
      name: d.name,
      type: d.type === 'data' ? 'data' : 'other',
      // a domain listed outside its data center carries no status: the engine lists only attached ones as active
      status: d.status === undefined || d.status === 'active' ? 'active' : 'other',
      isBlock: ['iscsi', 'fcp'].includes(d.storageType ?? ''),
      availableBytes: d.availableBytes ?? null,
    })),
    vms: vms.map((vm, i) => ({ id: vm.id, name: vm.name, macs: (nics[i] ?? []).flatMap((n) => (n.mac ? [n.mac] : [])) })),
    diskIds: vms.flatMap((vm) => (vm.diskAttachments ?? []).map((a) => a.diskId)),
    vnicProfiles: profiles.map((p) => {
      const net = p.networkId ? netById.get(p.networkId) : undefined;
      return {
        id: p.id,
        name: p.name,
        networkName: net?.name ?? p.networkName ?? '',
        clusterIds: clusters.filter((c) => net?.dataCenterId !== undefined && c.dataCenterId === net.dataCenterId).map((c) => c.id),
      };
    }),
  };
}

/** Non-zero bytes of each disk of a point, from its indexes (what an upload will send). */
export async function pointDataBytes(point: Pick<PointSource, 'manifest' | 'index'>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of point.manifest.disks) {
    const index = await point.index(d.device);
    let bytes = 0;
    for (let i = 0; i < index.count; i++) if (!index.isZero(i)) bytes += index.chunkLength(i);
    out[d.device] = bytes;
  }
  return out;
}
