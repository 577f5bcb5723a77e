import type { Host } from '../types';
import { HOST_STATUSES } from '../types';
import { Fields, listOf, type Json } from './fields';

/** `host` (reference §3.5). */
export function parseHost(o: Json): Host {
  const f = new Fields('host', o);
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    address: f.reqStr('address'),
    status: f.enumOf('status', HOST_STATUSES, 'unassigned') ?? 'unassigned',
    clusterId: f.refId('cluster'),
    libvirtVersion: f.sub('libvirt_version')?.str('full_version'),
    vdsmVersion: f.sub('version')?.str('full_version'),
    memoryBytes: f.int64('memory'),
  };
}

export function parseHosts(body: unknown): Host[] {
  return listOf(body, 'host', 'host list').map(parseHost);
}
