/**
 * A policy runs in its owner's name: each run backs up only the VMs its owner may still back up,
 * judged from the owner's last-known rights (their user id, the engine groups they were in when
 * they saved the policy, and Everyone) against the VM's permissions as the engine has them now,
 * read by the service account (unfiltered: every principal's, inherited ones included). Fail
 * closed: a VM the owner lost `backup_disk` on, or that the engine cannot answer for, is skipped
 * with the reason.
 */
import { describeError } from '../errors';
import { EVERYONE_GROUP_NAME, permitsOf, principalIds, principalNames, SUPER_USER_ROLE_ID, type PermissionEntry, type PermitObject } from '../engine';
import type { PolicyOwner, StoredPolicy } from './store';

export interface OwnerEngine {
  listPermissions(obj: PermitObject): Promise<PermissionEntry[]>;
}

/** For one VM: null when the owner may back it up, else why not (for the run's skipped VM). */
export type OwnerCheck = (vmId: string) => Promise<string | null>;

/**
 * The owner's rights for one run: whether they are a backup admin is asked once (the system's
 * permissions), then each VM's own permissions as the run reaches it.
 */
export async function ownerCheck(engine: OwnerEngine, policy: Pick<StoredPolicy, 'owner' | 'selection'>, backupAdmins: readonly string[]): Promise<OwnerCheck> {
  const owner = policy.owner;
  const unchecked = (err: unknown): string => `the rights of the policy's owner ${owner.name} could not be checked: ${describeError(err)}`;
  let admin: boolean;
  try {
    admin = await isBackupAdmin(engine, owner, backupAdmins);
  } catch (err) {
    const reason = unchecked(err);
    return () => Promise.resolve(reason);
  }
  if (admin) return () => Promise.resolve(null);
  // only backup admins select by tag or search (or save retention that deletes points): a
  // policy whose owner is no longer one backs nothing up in their name
  if (!('vmIds' in policy.selection)) return () => Promise.resolve(`the policy's owner ${owner.name} is no longer a backup admin`);
  const ids = principalIds(owner.id, owner.groupIds);
  return async (vmId) => {
    try {
      const held = permitsOf(await engine.listPermissions({ kind: 'vm', id: vmId }), ids);
      return held.has('backup_disk') ? null : `the policy's owner ${owner.name} no longer holds backup_disk on this vm`;
    } catch (err) {
      return unchecked(err);
    }
  };
}

/** A SuperUser on the system (through the user, a group or Everyone), or named (the user, a
 *  group, Everyone) in auth.backupAdmins: as api/permits.ts judges a caller. */
export async function isBackupAdmin(engine: OwnerEngine, owner: PolicyOwner, backupAdmins: readonly string[]): Promise<boolean> {
  const named = principalNames(backupAdmins);
  if (named(owner.name) || [...owner.groupNames, EVERYONE_GROUP_NAME].some(named)) return true;
  const ids = principalIds(owner.id, owner.groupIds);
  return (await engine.listPermissions({ kind: 'system' })).some((e) => e.roleId === SUPER_USER_ROLE_ID && ids.has(e.principal.id));
}
