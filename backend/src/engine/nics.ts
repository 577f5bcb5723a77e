import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseNics, parseVnicProfile } from './parse/nic';
import type { Nic, VnicProfile } from './types';

/** `GET /vms/{id}/nics`; with `withProfiles` the vNIC profiles are inlined (follow=vnic_profile). */
export async function listVmNics(
  conn: EngineConnection,
  vmId: string,
  opts: EngineCallOptions & { withProfiles?: boolean } = {},
): Promise<Nic[]> {
  const query = opts.withProfiles ? { follow: 'vnic_profile' } : undefined;
  return parseNics(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/nics`, query }));
}

/** `GET /vnicprofiles/{id}` with its network inlined, so the network's name is known. */
export async function getVnicProfile(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<VnicProfile> {
  const body = await conn.request({ ...opts, method: 'GET', path: `/vnicprofiles/${seg(id)}`, query: { follow: 'network' } });
  return parseVnicProfile(entityOf(body, `vnic profile ${id}`));
}
