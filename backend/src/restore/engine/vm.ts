import { isAppError } from '../../errors';
import { DISK_INTERFACES, type DiskInterface, type EngineCallOptions, type EngineClient, type Vm } from '../../engine';
import type { PlannedDisk, RestorePlan } from '../plan/types';
import { withVmDescription } from './ovfDescription';
import type { Rollback } from './rollback';

type PlannedVm = NonNullable<RestorePlan['vm']>;

interface StepContext {
  engine: EngineClient;
  rollback: Rollback;
  call: EngineCallOptions;
  warn: (msg: string) => void;
  onDisk?: (name: string) => void;
}

/**
 * `POST /vms` from the plan's OVF (reference §7.2), described in the OVF itself. The disks
 * exist with the ids the OVF references, so the engine attaches them; it only logs an event
 * for a disk it could not attach, so every planned disk is checked and, if missing, attached
 * explicitly.
 */
export async function createVmFromPlan(ctx: StepContext, vm: PlannedVm, disks: PlannedDisk[], description: string): Promise<Vm> {
  let ovf = withVmDescription(vm.ovf, description);
  if (ovf === null) {
    ctx.warn(`the ovf of ${vm.name} has no Content element; the vm is created without the restore description`);
    ovf = vm.ovf;
  }
  ctx.rollback.vmRequested(null, vm.name);
  let created: Vm;
  try {
    created = await ctx.engine.createVmFromConfiguration(
      { clusterId: vm.clusterId, name: vm.name, configuration: { type: 'ovf', data: ovf }, regenerateIds: vm.regenerateIds },
      ctx.call,
    );
  } catch (err) {
    if (isAppError(err, 'ENGINE_HTTP_ERROR')) ctx.rollback.vmRefused();
    throw err;
  }
  ctx.rollback.vmRequested(created.id, vm.name);
  if (created.description !== description) ctx.warn(`the engine did not take the description of ${vm.name} from the ovf`);
  const attached = await ctx.engine.listDiskAttachments(created.id, ctx.call);
  const missing = disks.filter((d) => !attached.some((a) => a.diskId === d.diskId));
  if (missing.length > 0) {
    ctx.warn(`the engine did not attach ${missing.map((d) => d.name).join(', ')} from the ovf; attached explicitly`);
    await attachDisks(ctx, created.id, missing, attached.some((a) => a.bootable));
  }
  return created;
}

/** Disks mode: the new disks plugged into an existing VM (interface and boot flag from the plan). */
export async function attachToVm(ctx: StepContext, vmId: string, disks: PlannedDisk[]): Promise<void> {
  const existing = await ctx.engine.listDiskAttachments(vmId, ctx.call);
  await attachDisks(ctx, vmId, disks, existing.some((a) => a.bootable));
}

async function attachDisks(ctx: StepContext, vmId: string, disks: PlannedDisk[], hasBootable: boolean): Promise<void> {
  let bootTaken = hasBootable;
  for (const d of disks) {
    ctx.onDisk?.(d.name);
    // a VM has one bootable disk; the engine refuses a second
    const bootable = d.bootable && !bootTaken;
    if (d.bootable && !bootable) ctx.warn(`disk ${d.name} is attached as not bootable: the vm already has a bootable disk`);
    bootTaken ||= bootable;
    ctx.rollback.attachRequested(vmId, d.diskId, d.name);
    try {
      await ctx.engine.attachDisk(vmId, { diskId: d.diskId, interface: diskInterface(d.interface), bootable, active: true }, ctx.call);
    } catch (err) {
      if (isAppError(err, 'ENGINE_HTTP_ERROR')) ctx.rollback.attachRefused(vmId, d.diskId);
      throw err;
    }
  }
}

export function diskInterface(s: string): DiskInterface {
  return (DISK_INTERFACES as readonly string[]).includes(s) ? (s as DiskInterface) : 'virtio_scsi';
}
