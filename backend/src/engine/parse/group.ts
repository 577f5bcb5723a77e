import type { DirectoryGroup, EngineGroup } from '../types';
import { Fields, listOf, type Json } from './fields';

/** `group` of `GET /groups` (GroupMapper from the engine's group table). */
export function parseEngineGroup(o: Json): EngineGroup {
  const f = new Fields('group', o);
  return {
    id: f.reqStr('id').toLowerCase(),
    name: f.str('name') ?? '',
    domainEntryId: f.str('domain_entry_id')?.toUpperCase(),
    domainName: f.sub('domain')?.str('name'),
  };
}

export function parseEngineGroups(body: unknown): EngineGroup[] {
  return listOf(body, 'group', 'group list').map(parseEngineGroup);
}

/** `group` of `GET /users/{id}/groups` (GroupMapper from a directory group: `id` is the directory's, hex). */
export function parseDirectoryGroup(o: Json): DirectoryGroup {
  const f = new Fields('directory group', o);
  return { id: f.reqStr('id').toUpperCase(), name: f.str('name'), domainName: f.sub('domain')?.str('name') };
}

export function parseDirectoryGroups(body: unknown): DirectoryGroup[] {
  return listOf(body, 'group', 'directory group list').map(parseDirectoryGroup);
}
