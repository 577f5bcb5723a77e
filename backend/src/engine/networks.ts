import type { EngineCallOptions, EngineConnection } from './connection';
import { Fields, listOf } from './parse/fields';
import { parseVnicProfile } from './parse/nic';
import type { Network, VnicProfile } from './types';

/** `GET /networks`: logical networks with their data center (a cluster can use those of its DC). */
export async function listNetworks(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<Network[]> {
  const body = await conn.request({ ...opts, method: 'GET', path: '/networks' });
  return listOf(body, 'network', 'network list').map((o) => {
    const f = new Fields('network', o);
    return { id: f.reqStr('id'), name: f.reqStr('name'), dataCenterId: f.refId('data_center') };
  });
}

/** `GET /vnicprofiles`: every vNIC profile (network by id; names via listNetworks). */
export async function listVnicProfiles(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<VnicProfile[]> {
  return listOf(await conn.request({ ...opts, method: 'GET', path: '/vnicprofiles' }), 'vnic_profile', 'vnic profile list').map(parseVnicProfile);
}
