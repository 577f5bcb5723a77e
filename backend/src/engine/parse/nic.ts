import type { Nic, VnicProfile } from '../types';
import { Fields, isInlined, listOf, type Json } from './fields';

/** `nic` (reference §3.3). */
export function parseNic(o: Json): Nic {
  const f = new Fields('nic', o);
  const profile = f.object('vnic_profile');
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    interface: f.str('interface'),
    mac: f.sub('mac')?.str('address'),
    linked: f.bool('linked'),
    plugged: f.bool('plugged'),
    vnicProfileId: f.refId('vnic_profile'),
    vnicProfile: isInlined(profile) ? parseVnicProfile(profile) : undefined,
  };
}

export function parseNics(body: unknown): Nic[] {
  return listOf(body, 'nic', 'nic list').map(parseNic);
}

/** `vnic_profile`; the network name is known only when the network was inlined. */
export function parseVnicProfile(o: Json): VnicProfile {
  const f = new Fields('vnic profile', o);
  const network = f.object('network');
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    networkId: f.refId('network'),
    networkName: isInlined(network) ? new Fields('network', network).str('name') : undefined,
  };
}
