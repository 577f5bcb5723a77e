/**
 * Whether the service account holds what the engine backup method needs (README, "Least
 * privilege"; reference ovirt-permissions.md §4): `backup_disk` on the VMs (StartVmBackup and
 * StopVmBackup check it on the VM and each disk), `edit_disk_properties` on their disks
 * (TransferDiskImage, the download of each disk), and `create_disk` on System (the REST
 * finalize and cancel of an image transfer check it there). The account's permits are read as
 * the VM Portal reads a user's (§5): the object's permission list with each role's permits,
 * the entries of the account, its groups and Everyone. Grants on a data center or System show
 * on a cluster as inherited, so a cluster's list answers for every VM in it.
 */
import { permitsOf, principalIds, type EngineClient, type PermitObject } from '../engine';
import { AppError } from '../errors';

/** The permits the VMs need, and the smallest predefined role granting them (both travel
 *  together in every predefined role). */
const VM_PERMITS = ['backup_disk', 'edit_disk_properties'] as const;
const VM_ROLE = 'DiskOperator';
const SYSTEM_PERMIT = 'create_disk';
const SYSTEM_ROLE = 'DiskCreator';

export interface MissingPermit {
  permit: string;
  /** `System` or `cluster <name>` */
  object: string;
  /** The predefined role that would grant it there. */
  role: string;
}

/** What is missing (empty: the engine method may run); the lines say what was found. */
export async function engineMethodPermits(engine: EngineClient, account: { id: string; userName: string }): Promise<{ missing: MissingPermit[]; found: string }> {
  const groups = await engine.listUserGroups(account.id);
  const ids = principalIds(account.id, groups.map((g) => g.id));
  const on = async (obj: PermitObject): Promise<Set<string>> => permitsOf(await engine.listPermissions(obj), ids);
  const system = await on({ kind: 'system' });
  const missing: MissingPermit[] = [];
  if (!system.has(SYSTEM_PERMIT)) missing.push({ permit: SYSTEM_PERMIT, object: 'System', role: `${SYSTEM_ROLE} (or ${VM_ROLE}) on System` });
  const vmWide = VM_PERMITS.filter((p) => !system.has(p));
  if (vmWide.length === 0) return { missing, found: `${VM_PERMITS.join(', ')} on System` };
  const clusters = await engine.listClusters();
  for (const c of clusters) {
    const held = await on({ kind: 'cluster', id: c.id });
    for (const p of vmWide) if (!held.has(p)) missing.push({ permit: p, object: `cluster ${c.name}`, role: `${VM_ROLE} on System or on cluster ${c.name} (ClusterAdmin there grants it too)` });
  }
  return { missing, found: `${VM_PERMITS.join(', ')} on ${clusters.length === 1 ? 'cluster ' : 'every cluster: '}${clusters.map((c) => c.name).join(', ')}` };
}

/** SETUP_PERMISSION_MISSING naming each missing permit, its object and the role to grant. */
export function missingPermitsError(user: string, method: string, missing: readonly MissingPermit[]): AppError {
  const what = missing.map((m) => `${m.permit} on ${m.object} (grant ${m.role})`).join('; ');
  return new AppError(
    'SETUP_PERMISSION_MISSING',
    `${user} lacks what the engine backup method needs (backup.method ${method}): ${what}. ` +
      'Grant it in the Administration Portal, or run setup with --backup-method qmp to back up through the host links only',
    { details: { missing } },
  );
}
