import { randomUUID } from 'crypto';
import { DEFAULT_CLUSTER_VERSION, hostName, SYSTEM_ID, type PersistedState, type SimHostRecord, type SimPermissionRecord } from './state';

/**
 * state.json as older simulators wrote it -> the current shape (version 3).
 * - Version 1 had one host (`hostId`, `hostHwId`, named sim-host) and no record of where a VM
 *   runs: its running VMs ran on that host.
 * - Version 2 had no permissions: a user's `admin` flag (admin@internal) and a VM's
 *   `permittedUserIds` (user1 on web01). They become what they stood for: SuperUser on the system
 *   object, UserRole on the VM. Users get a directory id and no groups; accounts.ts then adds the
 *   accounts, groups and default grants a version 2 engine did not have.
 * - A version 3 file from before the backup API has no `checkpoints` and `backups`: none.
 */
export function migrateState(raw: Record<string, unknown>): PersistedState {
  let data = raw;
  if (!Array.isArray(data['hosts'])) data = fromVersion1(data);
  if (data['version'] === 2) data = fromVersion2(data);
  // the backup API's tables came within version 3 (tests elsewhere pin the number): absent = none
  data = { ...data, checkpoints: data['checkpoints'] ?? [], backups: data['backups'] ?? [], clusterVersion: data['clusterVersion'] ?? DEFAULT_CLUSTER_VERSION };
  return data as unknown as PersistedState;
}

function fromVersion1(raw: Record<string, unknown>): Record<string, unknown> {
  const { hostId, hostHwId, ...rest } = raw;
  const host: SimHostRecord = { id: typeof hostId === 'string' ? hostId : randomUUID(), name: hostName(0), hwId: typeof hostHwId === 'string' ? hostHwId : randomUUID() };
  const vms = (Array.isArray(rest['vms']) ? rest['vms'] : []) as Array<{ status: string; runOnHostId?: string }>;
  for (const vm of vms) if (vm.status !== 'down' && !vm.runOnHostId) vm.runOnHostId = host.id;
  return { ...rest, version: 2, hosts: [host] };
}

/** Predefined role ids (data/00500_insert_roles.sql), kept literal: migration is about old files. */
const SUPER_USER_ROLE_ID = '00000000-0000-0000-0000-000000000001';
const USER_ROLE_ID = '00000000-0000-0000-0001-000000000001';

function fromVersion2(raw: Record<string, unknown>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const permissions: SimPermissionRecord[] = [];
  const users = (raw['users'] ?? []) as Array<Record<string, unknown>>;
  const vms = (raw['vms'] ?? []) as Array<Record<string, unknown>>;
  for (const u of users) {
    if (u['admin'] === true) permissions.push({ id: randomUUID(), roleId: SUPER_USER_ROLE_ID, principalId: String(u['id']), objectKind: 'system', objectId: SYSTEM_ID, creationDate: now });
    delete u['admin'];
    u['externalId'] ??= randomUUID();
    u['groupIds'] ??= [];
  }
  for (const vm of vms) {
    const ids = Array.isArray(vm['permittedUserIds']) ? (vm['permittedUserIds'] as unknown[]).map(String) : [];
    for (const userId of ids) permissions.push({ id: randomUUID(), roleId: USER_ROLE_ID, principalId: userId, objectKind: 'vm', objectId: String(vm['id']), creationDate: now });
    delete vm['permittedUserIds'];
  }
  // what a file already has of the newer shape is kept (tests write old shapes from new files)
  const kept = Array.isArray(raw['permissions']) ? (raw['permissions'] as SimPermissionRecord[]) : [];
  return { ...raw, version: 3, cpuProfileId: raw['cpuProfileId'] ?? randomUUID(), groups: raw['groups'] ?? [], permissions: [...kept, ...permissions] };
}
