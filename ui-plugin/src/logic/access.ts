/**
 * What the user may not do, and why, from what the service says of them: each VM's `access`
 * flags (the engine's permits, `GET /vms`) and whoami's `backupAdmin`. The service checks every
 * action again (403 naming the missing permit); these let the portal disable a button with its
 * reason instead of failing after the click. Unknown (not loaded yet, a VM the list does not
 * name) never denies: the service decides then. Pure: no DOM, no React.
 */
import type { Job, Policy, RestorePlanView, RestoreRequestBody, VmAccess, WhoAmI } from '../../../backend/src/api/contract';
import type { MessageKey, Translate } from '../intl/messages';

/** A reason not to offer an action: a message key and its parameters. */
export interface Denial {
  key: MessageKey;
  params?: Record<string, string | number>;
}

/** Who asks, as whoami said; null until it has answered. */
export type Caller = Pick<WhoAmI, 'userId' | 'backupAdmin'> | null;

/** A VM as the list names it, with its access flags once known. */
export interface VmRef {
  id: string;
  name: string;
  access?: VmAccess | null;
}

/** The vmId of a job about the whole repository (the contract's REPOSITORY_JOB_VM_ID; the
 *  plugin imports types only, so it keeps its own copy). */
export const REPOSITORY_VM_ID = '00000000-0000-0000-0000-000000000000';

/** The sentence of a denial, or undefined when allowed (what ActionState.disabledReason takes). */
export function deniedText(t: Translate, d: Denial | null): string | undefined {
  return d ? t(d.key, d.params) : undefined;
}

function lacks(vm: VmRef | undefined, flag: keyof VmAccess): boolean {
  return Boolean(vm?.access && !vm.access[flag]);
}

/** Backup now: `backup_disk` on the VM. */
export function backupDenial(vm: VmRef): Denial | null {
  return lacks(vm, 'backup') ? { key: 'deniedBackup', params: { vm: vm.name } } : null;
}

/** Backup now of several VMs (WebAdmin's selection): the first that may not be backed up. */
export function backupAllDenial(vms: readonly VmRef[]): Denial | null {
  for (const vm of vms) {
    const d = backupDenial(vm);
    if (d) return d;
  }
  return null;
}

/** Verify a point: `backup_disk` on its VM. */
export function verifyDenial(vm: VmRef | undefined): Denial | null {
  return vm && lacks(vm, 'backup') ? { key: 'deniedVerify', params: { vm: vm.name } } : null;
}

/** A disk image download: `backup_disk` + `edit_disk_properties`, or a backup admin. */
export function downloadDenial(vm: VmRef | undefined, me: Caller): Denial | null {
  if (me?.backupAdmin) return null;
  return vm && lacks(vm, 'download') ? { key: 'deniedDownload', params: { vm: vm.name } } : null;
}

/** A boot check (start one, see its verdict and screen): what a download of the point's disks
 *  needs — the service applies the same rule (the list's `download` flag already counts backup
 *  admins in). */
export function bootCheckDenial(vm: VmRef | undefined): Denial | null {
  return vm && lacks(vm, 'download') ? { key: 'deniedBootCheck', params: { vm: vm.name } } : null;
}

/** Browse files… of a point: what a download of its disks needs (the service's rule). */
export function browseFilesDenial(vm: VmRef | undefined): Denial | null {
  return vm && lacks(vm, 'download') ? { key: 'deniedBrowseFiles', params: { vm: vm.name } } : null;
}

/** Attaching restored disks to a VM: `configure_vm_storage` on it. */
export function restoreIntoDenial(vm: VmRef | undefined): Denial | null {
  return vm && lacks(vm, 'restoreInto') ? { key: 'deniedRestoreInto', params: { vm: vm.name } } : null;
}

/** What only a backup admin may do (verify the repository, read the audit log …). */
export function adminDenial(me: Caller, key: MessageKey): Denial | null {
  return me && !me.backupAdmin ? { key } : null;
}

/**
 * Cancel: one's own restore always; one's own backup or verify of a VM with `backup_disk` on
 * it; anyone else's job, and a repository verify, only a backup admin.
 */
export function cancelDenial(job: Pick<Job, 'kind' | 'vmId' | 'vmName' | 'requestedBy'>, me: Caller, vm: VmRef | undefined): Denial | null {
  if (!me || me.backupAdmin) return null;
  const own = job.requestedBy.id === me.userId;
  if (own && job.kind === 'restore') return null;
  if (job.vmId === REPOSITORY_VM_ID) return { key: 'deniedCancelRepository' };
  if (!own) return { key: 'deniedCancelOthers', params: { user: job.requestedBy.name } };
  return vm && lacks(vm, 'backup') ? { key: 'deniedCancelOwn', params: { vm: job.vmName } } : null;
}

/**
 * Starting the restore the plan describes. A non-admin's plan lists only the clusters and
 * storage domains they may create in (`create_vm`, `create_disk`); original ids are for backup
 * admins; attaching needs `configure_vm_storage` on the target VM.
 */
export function restoreDenial(plan: RestorePlanView | null, body: RestoreRequestBody | null, me: Caller, vmOf: (id: string) => VmRef | undefined): Denial | null {
  if (!me || me.backupAdmin || !plan || !body) return null;
  if (body.mode === 'vm' && body.regenerateIds === false) return { key: 'deniedOriginalIds' };
  // the service plans a user's restore only within the clusters and domains they may create in,
  // and names none they may not: an empty list is the whole refusal
  if (body.mode === 'vm' && plan.targets.clusters.length === 0) return { key: 'deniedCreateVm' };
  if (plan.disks.length > 0 && plan.targets.storageDomains.length === 0) return { key: 'deniedCreateDisk' };
  if (plan.attachToVmId) {
    const name = plan.targets.vms.find((v) => v.id === plan.attachToVmId)?.name ?? plan.attachToVmId;
    const target = vmOf(plan.attachToVmId);
    if (target) return restoreIntoDenial({ ...target, name });
  }
  return null;
}

/** What in a policy only a backup admin may set (the service's own list, for the texts). */
export function policyAdminParts(p: Pick<Policy, 'selection' | 'retention' | 'lockDays'>): Array<'selection' | 'retention' | 'lock'> {
  const out: Array<'selection' | 'retention' | 'lock'> = [];
  if (!('vmIds' in p.selection)) out.push('selection');
  if (Object.values(p.retention).some((n) => n > 0)) out.push('retention');
  if (p.lockDays > 0) out.push('lock');
  return out;
}

/** Change, run or delete a policy: a backup admin, or a policy of chosen VMs that keeps every
 *  point with no lock of its own and `backup_disk` on each of its VMs. */
export function policyManageDenial(p: Pick<Policy, 'selection' | 'retention' | 'lockDays'>, me: Caller, vms: readonly VmRef[]): Denial | null {
  if (!me || me.backupAdmin) return null;
  if (policyAdminParts(p).length > 0) return { key: 'deniedPolicyManage' };
  if ('vmIds' in p.selection) {
    const byId = new Map(vms.map((v) => [v.id, v]));
    for (const id of p.selection.vmIds) {
      const vm = byId.get(id);
      if (vm && lacks(vm, 'backup')) return { key: 'deniedPolicyVm', params: { vm: vm.name } };
    }
  }
  return null;
}

/** Create a policy: a backup admin, or anyone with `backup_disk` on a VM to put in it. */
export function policyCreateDenial(me: Caller, vms: readonly VmRef[]): Denial | null {
  if (!me || me.backupAdmin) return null;
  const known = vms.filter((v) => v.access);
  return known.length === vms.length && !known.some((v) => v.access?.backup) ? { key: 'deniedPolicyCreate' } : null;
}

/** A VM's checkbox in the policy form: `backup_disk` on it (a backup admin may name any VM). */
export function policyVmDenial(vm: VmRef, me: Caller): Denial | null {
  if (!me || me.backupAdmin) return null;
  return lacks(vm, 'backup') ? { key: 'deniedPolicyVm', params: { vm: vm.name } } : null;
}

/** The policy form's fields a non-admin may not set, each with its reason; empty for admins. */
export function policyFieldDenials(me: Caller): { selection: Denial | null; retention: Denial | null; lock: Denial | null } {
  const admin = !me || me.backupAdmin;
  return {
    selection: admin ? null : { key: 'deniedPolicySelection' },
    retention: admin ? null : { key: 'deniedPolicyRetention' },
    lock: admin ? null : { key: 'deniedPolicyLock' },
  };
}
