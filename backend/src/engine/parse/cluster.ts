import type { Cluster } from '../types';
import { Fields, listOf, type Json } from './fields';

/** `cluster` (reference §3.5). */
export function parseCluster(o: Json): Cluster {
  const f = new Fields('cluster', o);
  const version = f.sub('version');
  const cpu = f.sub('cpu');
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    description: f.str('description') ?? '',
    version: version ? { major: version.int('major') ?? 0, minor: version.int('minor') ?? 0 } : undefined,
    cpuType: cpu?.str('type'),
    cpuArchitecture: cpu?.str('architecture'),
    dataCenterId: f.refId('data_center'),
    macPoolId: f.refId('mac_pool'),
  };
}

export function parseClusters(body: unknown): Cluster[] {
  return listOf(body, 'cluster', 'cluster list').map(parseCluster);
}
