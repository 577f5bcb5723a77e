import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseStorageDomain, parseStorageDomains } from './parse/storageDomain';
import type { StorageDomain } from './types';

export async function getStorageDomain(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<StorageDomain> {
  const body = await conn.request({ ...opts, method: 'GET', path: `/storagedomains/${seg(id)}` });
  return parseStorageDomain(entityOf(body, `storage domain ${id}`));
}

export async function listStorageDomains(
  conn: EngineConnection,
  opts: EngineCallOptions & { search?: string } = {},
): Promise<StorageDomain[]> {
  const query = opts.search !== undefined ? { search: opts.search, case_sensitive: false } : undefined;
  return parseStorageDomains(await conn.request({ ...opts, method: 'GET', path: '/storagedomains', query }));
}
