import type { Response } from 'express';
import type { PointSummary } from '../catalog';
import type { Vm } from '../engine';
import type { Principal } from './auth';
import type { VmAccess } from './contract';
import type { ApiDeps } from './deps';
import { principalOf } from './middleware';
import type { Permits } from './permits';

/**
 * The permits each action on a VM's backups needs (README, "Who may do what"), in one place: the
 * routes check them before acting, the VM list reports them so the portal can disable what the
 * user may not do.
 */
export const NEEDS = {
  backup: ['backup_disk'],
  /** What the engine itself demands to read a disk's data (reference ovirt-permissions.md §4,
   *  §6): `backup_disk` on the VM and `edit_disk_properties` on the disk. See requireDownload. */
  download: { vm: ['backup_disk'], disk: ['edit_disk_properties'] },
  restoreInto: ['configure_vm_storage'],
} as const;

type DownloadPermits = Pick<Permits, 'isBackupAdmin' | 'has' | 'require' | 'requireBackupAdmin'>;

/** What the caller may do to a VM's backups (the VM as the caller's list reads it, disks included). */
export async function vmAccess(deps: Pick<ApiDeps, 'permits'>, res: Response, vm: Pick<Vm, 'id' | 'diskAttachments'>): Promise<VmAccess> {
  const p = principalOf(res);
  const held = await deps.permits.on(p, { kind: 'vm', id: vm.id });
  const all = (need: readonly string[]): boolean => need.every((x) => held.has(x));
  return { backup: all(NEEDS.backup), download: await mayDownloadDisksOf(deps.permits, p, vm, held), restoreInto: all(NEEDS.restoreInto) };
}

/**
 * FORBIDDEN unless the caller may download this disk of a point: a backup admin may download any
 * (a deleted VM's, whose permits went with it, or one whose point names no engine disk: nobody
 * else holds a permit on those); anyone else needs NEEDS.download. The VM list's `download` flag
 * is the same rule (mayDownloadDisksOf), so the portal offers what this allows.
 */
export async function requireDownload(
  permits: DownloadPermits,
  p: Principal,
  vm: { id: string; name: string },
  disk: { id: string | null; device: string },
  /** What a refusal says was asked, when it reads the disks otherwise (a boot check). */
  action = `download a disk of vm ${vm.name}`,
): Promise<void> {
  if (await permits.isBackupAdmin(p)) return;
  const what = action;
  if (disk.id === null) {
    await permits.requireBackupAdmin(p, `${what} (its point names no engine disk)`);
    return;
  }
  await permits.require(p, what, [
    { obj: { kind: 'vm', id: vm.id }, permits: NEEDS.download.vm, label: `vm ${vm.name}` },
    { obj: { kind: 'disk', id: disk.id }, permits: NEEDS.download.disk, label: `disk ${disk.device} of vm ${vm.name}` },
  ]);
}

/** requireDownload's rule for every disk the VM has now (one flag per VM in the list). */
async function mayDownloadDisksOf(permits: DownloadPermits, p: Principal, vm: Pick<Vm, 'id' | 'diskAttachments'>, held: ReadonlySet<string>): Promise<boolean> {
  if (await permits.isBackupAdmin(p)) return true;
  if (!NEEDS.download.vm.every((x) => held.has(x))) return false;
  // a disk inherits the permits of the VM it is attached to (reference §1): held on the VM, they
  // are held on each disk without asking — the usual case, the predefined roles hold both
  if (NEEDS.download.disk.every((x) => held.has(x))) return true;
  const disks = vm.diskAttachments ?? [];
  if (disks.length === 0) return false;
  for (const d of disks) {
    if (!(await permits.has(p, { obj: { kind: 'disk', id: d.diskId }, permits: NEEDS.download.disk }))) return false;
  }
  return true;
}

/** FORBIDDEN unless the caller holds `permits` on the VM (named as the caller sees it). */
export async function requireOnVm(deps: Pick<ApiDeps, 'permits'>, res: Response, vm: Pick<Vm, 'id' | 'name'>, permits: readonly string[], action: string): Promise<void> {
  await deps.permits.require(principalOf(res), action, [{ obj: { kind: 'vm', id: vm.id }, permits, label: `vm ${vm.name}` }]);
}

/**
 * FORBIDDEN unless the caller may download each of the point's disks (or those named): what
 * reading a point's data in any form needs — a boot check, file browsing. The refusal names the
 * missing permit on what the caller can see (`action` says what was asked).
 */
export async function requirePointDownload(deps: Pick<ApiDeps, 'permits'>, res: Response, point: Pick<PointSummary, 'vmId' | 'vmName' | 'disks'>, action: string, devices?: readonly string[]): Promise<void> {
  const p = principalOf(res);
  for (const d of point.disks) {
    if (devices && !devices.includes(d.device)) continue;
    await requireDownload(deps.permits, p, { id: point.vmId, name: point.vmName }, { id: d.diskId, device: d.device }, `${action} a restore point of vm ${point.vmName}`);
  }
}
