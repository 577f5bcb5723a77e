/**
 * A policy runs in its owner's name: each run backs up only the VMs its owner may still back up,
 * judged from the owner's last-known rights (their user id and the engine groups they were in
 * when they saved the policy) against the VM's permissions as the engine has them now, read by
 * the service account (unfiltered: every principal's, inherited ones included). Fail closed: a
 * VM the owner lost `backup_disk` on, or that the engine cannot answer for, is skipped with the
 * reason.
 */
import { describeError } from '../errors';
import { permitsOf, principalNames, SUPER_USER_ROLE_ID, type PermissionEntry, type PermitObject } from '../engine';
import type { PolicyOwner, StoredPolicy } from './store';

export interface OwnerEngine {
  listPermissions(obj: PermitObject): Promise<PermissionEntry[]>;
}

/** null when the owner may back `vmId` up; else why not (for the run's skipped VM). */
export async function ownerMayBackUp(engine: OwnerEngine, policy: Pick<StoredPolicy, 'owner' | 'selection'>, vmId: string, backupAdmins: readonly string[]): Promise<string | null> {
  const owner = policy.owner;
  try {
    if (await isBackupAdmin(engine, owner, backupAdmins)) return null;
    // only backup admins select by tag or search (or save retention that deletes points): a
    // policy whose owner is no longer one backs nothing up in their name
    if (!('vmIds' in policy.selection)) return `the policy's owner ${owner.name} is no longer a backup admin`;
    const held = permitsOf(await engine.listPermissions({ kind: 'vm', id: vmId }), principalIds(owner));
    return held.has('backup_disk') ? null : `the policy's owner ${owner.name} no longer holds backup_disk on this vm`;
  } catch (err) {
    return `the rights of the policy's owner ${owner.name} could not be checked: ${describeError(err)}`;
  }
}

/** A SuperUser on the system (through the user or a group), or named in auth.backupAdmins. */
export async function isBackupAdmin(engine: OwnerEngine, owner: PolicyOwner, backupAdmins: readonly string[]): Promise<boolean> {
  const named = principalNames(backupAdmins);
  if (named(owner.name) || owner.groupNames.some(named)) return true;
  const ids = principalIds(owner);
  return (await engine.listPermissions({ kind: 'system' })).some((e) => e.roleId === SUPER_USER_ROLE_ID && ids.has(e.principal.id));
}

function principalIds(owner: PolicyOwner): Set<string> {
  return new Set([owner.id, ...owner.groupIds].map((id) => id.toLowerCase()));
}
