import { randomBytes, randomUUID } from 'crypto';
import { grant, SYSTEM, type ObjectRef } from './access';
import { role } from './roles';
import { BLANK_TEMPLATE_ID, EVERYONE_ID, type SimState } from './state';

/**
 * The engine's accounts: the built-in Everyone group and its default grants (what every fresh
 * engine has), and the users and groups the simulator seeds, one per row of the product's
 * authorization table, each with the grants that make its row testable both ways (README.md,
 * "Users and permissions"). Passwords are made here and kept in state.json.
 */

export type SimUserKey = 'admin' | 'plain' | 'viewer' | 'operator' | 'creator' | 'diskop' | 'grpop' | 'backupadmin' | 'roadmin';

type Target = (st: SimState) => ObjectRef[];
const system: Target = () => [SYSTEM];
const cluster: Target = (st) => [{ kind: 'cluster', id: st.data.clusterId }];
const vm =
  (name: string): Target =>
  (st) =>
    st.data.vms.filter((v) => v.name === name).map((v) => ({ kind: 'vm', id: v.id }));
const disksOf =
  (name: string): Target =>
  (st) =>
    st.data.vms.filter((v) => v.name === name).flatMap((v) => v.attachments.map((a) => ({ kind: 'disk' as const, id: a.diskId })));
const domain =
  (...names: string[]): Target =>
  (st) =>
    st.data.storageDomains.filter((s) => names.includes(s.name)).map((s) => ({ kind: 'storagedomain', id: s.id }));

interface SeedGrant {
  role: string;
  on: Target;
}

interface SeedUser {
  key: SimUserKey;
  name: string;
  groups: string[];
  grants: SeedGrant[];
}

const USERS: SeedUser[] = [
  { key: 'admin', name: 'admin', groups: [], grants: [{ role: 'SuperUser', on: system }] },
  // many tests rely on user1 seeing exactly web01
  { key: 'plain', name: 'user1', groups: [], grants: [{ role: 'UserRole', on: vm('web01') }] },
  { key: 'viewer', name: 'viewer', groups: [], grants: [{ role: 'UserRole', on: cluster }] },
  { key: 'operator', name: 'operator', groups: [], grants: [{ role: 'UserVmManager', on: vm('web01') }, { role: 'DiskCreator', on: domain('data1') }] },
  {
    key: 'creator',
    name: 'creator',
    groups: [],
    grants: [{ role: 'UserRole', on: vm('web01') }, { role: 'PowerUserRole', on: cluster }, { role: 'DiskCreator', on: domain('data1', 'data2') }],
  },
  { key: 'diskop', name: 'diskop', groups: [], grants: [{ role: 'UserRole', on: vm('web01') }, { role: 'DiskOperator', on: disksOf('web01') }] },
  { key: 'grpop', name: 'grpop', groups: ['backup-operators'], grants: [] },
  { key: 'backupadmin', name: 'backupadmin', groups: ['olvm-backup-admins'], grants: [{ role: 'UserRole', on: cluster }] },
  { key: 'roadmin', name: 'roadmin', groups: [], grants: [{ role: 'ReadOnlyAdmin', on: system }] },
];

/** Directory groups of the internal domain, imported into the engine, with their grants. */
const GROUPS: Array<{ name: string; grants: SeedGrant[] }> = [
  { name: 'backup-operators', grants: [{ role: 'UserVmManager', on: vm('db01') }] },
  // to be configured as the product's backup admins: membership is what counts, it holds no role
  { name: 'olvm-backup-admins', grants: [] },
];

export const SEED_USER_KEYS: readonly SimUserKey[] = USERS.map((u) => u.key);

export function seedUserName(key: SimUserKey): string {
  const u = USERS.find((x) => x.key === key);
  if (!u) throw new Error(`engine simulator has no seed user ${key}`);
  return `${u.name}@internal`;
}

/**
 * Creates what is missing: Everyone, the seed groups and users (with a new password each), and
 * Everyone's default grants of a fresh install (data/00600_insert_permissions.sql, with the
 * engine's permission ids, and upgrade/04_04_0710 for the MAC pool; the instance types those
 * scripts also cover are not simulated). Returns the names of the users and groups it created,
 * whose seed grants `grantSeedRoles` then adds.
 */
export function ensureAccounts(st: SimState): Set<string> {
  const d = st.data;
  const created = new Set<string>();
  if (!st.group(EVERYONE_ID)) d.groups.unshift({ id: EVERYONE_ID, name: 'Everyone', externalId: EVERYONE_ID, domain: '' });
  for (const g of GROUPS) {
    if (st.groupByName(g.name)) continue;
    d.groups.push({ id: randomUUID(), name: g.name, externalId: randomUUID(), domain: 'internal-authz' });
    created.add(g.name);
  }
  for (const u of USERS) {
    if (st.userByName(`${u.name}@internal`)) continue;
    const groupIds = u.groups.map((n) => st.groupByName(n)?.id).filter((id): id is string => id !== undefined);
    d.users.push({ id: randomUUID(), name: u.name, userName: `${u.name}@internal`, password: randomBytes(9).toString('base64url'), externalId: randomUUID(), groupIds });
    created.add(`${u.name}@internal`);
  }
  const everyone = (id: string, roleName: string, object: ObjectRef, creationDate?: number): void => {
    if (!d.permissions.some((p) => p.id === id)) grant(st, { id, roleId: role(roleName).id, principalId: EVERYONE_ID, object, creationDate });
  };
  everyone('58ca605c-010d-0307-0224-0000000001a9', 'UserProfileEditor', SYSTEM, 1489657949);
  everyone('00000004-0004-0004-0004-000000000355', 'UserTemplateBasedVm', { kind: 'template', id: BLANK_TEMPLATE_ID }, 1489657946);
  everyone('0000000b-000b-000b-000b-0000000001d5', 'VnicProfileUser', { kind: 'vnicprofile', id: d.vnicProfileId }, 1489657946);
  everyone('14124e3a-fedf-11e9-8092-8c1645ce738e', 'CpuProfileOperator', { kind: 'cpuprofile', id: d.cpuProfileId }, 1572856968);
  everyone('58ca604b-017d-0374-0220-00000000014e', 'MacPoolUser', { kind: 'macpool', id: d.macPoolId });
  st.save();
  return created;
}

/** The seed grants of the named users and groups, on whichever of their objects exist now. */
export function grantSeedRoles(st: SimState, names: ReadonlySet<string>): void {
  const apply = (principalId: string, grants: SeedGrant[]): void => {
    for (const g of grants) for (const object of g.on(st)) grant(st, { roleId: role(g.role).id, principalId, object });
  };
  for (const g of GROUPS) {
    const rec = st.groupByName(g.name);
    if (rec && names.has(g.name)) apply(rec.id, g.grants);
  }
  for (const u of USERS) {
    const rec = st.userByName(`${u.name}@internal`);
    if (rec && names.has(rec.userName)) apply(rec.id, u.grants);
  }
}
