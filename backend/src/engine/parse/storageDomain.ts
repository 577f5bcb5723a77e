import type { StorageDomain } from '../types';
import { Fields, listOf, type Json } from './fields';

const BLOCK_STORAGE_TYPES = ['iscsi', 'fcp'];

/** `storage_domain` (reference §3.5). */
export function parseStorageDomain(o: Json): StorageDomain {
  const f = new Fields('storage domain', o);
  const storage = f.sub('storage');
  const storageType = storage?.str('type');
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    type: f.str('type'),
    status: f.str('status'),
    externalStatus: f.str('external_status'),
    availableBytes: f.int64('available'),
    usedBytes: f.int64('used'),
    committedBytes: f.int64('committed'),
    master: f.bool('master'),
    storageFormat: f.str('storage_format'),
    blockSize: f.int('block_size'),
    backup: f.bool('backup'),
    storageType,
    storageAddress: storage?.str('address'),
    storagePath: storage?.str('path'),
    isBlock: storageType !== undefined && BLOCK_STORAGE_TYPES.includes(storageType),
    dataCenterIds: (f.nestedList('data_centers', 'data_center') ?? [])
      .map((dc) => (typeof dc.id === 'string' ? dc.id : ''))
      .filter((id) => id !== ''),
  };
}

export function parseStorageDomains(body: unknown): StorageDomain[] {
  return listOf(body, 'storage_domain', 'storage domain list').map(parseStorageDomain);
}
