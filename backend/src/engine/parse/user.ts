import type { User } from '../types';
import { Fields, listOf, type Json } from './fields';

/** `user` (reference ovirt-ui-plugin.md §5.9). */
export function parseUser(o: Json): User {
  const f = new Fields('user', o);
  const domain = f.sub('domain');
  return {
    id: f.reqStr('id'),
    userName: f.str('user_name') ?? f.reqStr('name'),
    principal: f.str('principal'),
    namespace: f.str('namespace'),
    domainName: domain?.str('name'),
    domainEntryId: f.str('domain_entry_id'),
    firstName: f.str('name'),
    lastName: f.str('last_name'),
    email: f.str('email'),
  };
}

export function parseUsers(body: unknown): User[] {
  return listOf(body, 'user', 'user list').map(parseUser);
}
