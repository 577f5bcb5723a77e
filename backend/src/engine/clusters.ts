import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseCluster, parseClusters } from './parse/cluster';
import { entityOf } from './parse/fields';
import type { Cluster } from './types';

export async function getCluster(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<Cluster> {
  return parseCluster(entityOf(await conn.request({ ...opts, method: 'GET', path: `/clusters/${seg(id)}` }), `cluster ${id}`));
}

export async function listClusters(conn: EngineConnection, opts: EngineCallOptions & { search?: string } = {}): Promise<Cluster[]> {
  const query = opts.search !== undefined ? { search: opts.search, case_sensitive: false } : undefined;
  return parseClusters(await conn.request({ ...opts, method: 'GET', path: '/clusters', query }));
}
