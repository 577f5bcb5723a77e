import type { Response } from 'express';
import type { Vm } from '../engine';
import type { VmAccess } from './contract';
import type { ApiDeps } from './deps';
import { principalOf } from './middleware';

/**
 * The permits each action on a VM's backups needs (README, "Who may do what"), in one place: the
 * routes check them before acting, the VM list reports them so the portal can disable what the
 * user may not do.
 */
export const NEEDS = {
  backup: ['backup_disk'],
  download: ['backup_disk', 'edit_disk_properties'],
  restoreInto: ['configure_vm_storage'],
} as const;

/** What the caller may do to a VM's backups. */
export async function vmAccess(deps: Pick<ApiDeps, 'permits'>, res: Response, vm: Pick<Vm, 'id'>): Promise<VmAccess> {
  const held = await deps.permits.on(principalOf(res), { kind: 'vm', id: vm.id });
  const all = (need: readonly string[]): boolean => need.every((p) => held.has(p));
  return { backup: all(NEEDS.backup), download: all(NEEDS.download), restoreInto: all(NEEDS.restoreInto) };
}

/** FORBIDDEN unless the caller holds `permits` on the VM (named as the caller sees it). */
export async function requireOnVm(deps: Pick<ApiDeps, 'permits'>, res: Response, vm: Pick<Vm, 'id' | 'name'>, permits: readonly string[], action: string): Promise<void> {
  await deps.permits.require(principalOf(res), action, [{ obj: { kind: 'vm', id: vm.id }, permits, label: `vm ${vm.name}` }]);
}
