import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseHost, parseHosts } from './parse/host';
import type { Host } from './types';

/** `GET /hosts/{id}`: where a running VM is (`vm.hostId`), by `address` (reference §8). */
export async function getHost(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<Host> {
  return parseHost(entityOf(await conn.request({ ...opts, method: 'GET', path: `/hosts/${seg(id)}` }), `host ${id}`));
}

/** `GET /hosts[?search=...]`, e.g. `hw_id=<vdsm id> and status=Up`. */
export async function listHosts(conn: EngineConnection, opts: EngineCallOptions & { search?: string } = {}): Promise<Host[]> {
  const query = opts.search !== undefined ? { search: opts.search, case_sensitive: false } : undefined;
  return parseHosts(await conn.request({ ...opts, method: 'GET', path: '/hosts', query }));
}
