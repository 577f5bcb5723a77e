import type { BlockDevice, DirtyBitmap } from '../qmp';
import { readPointMeta, type DamageMark, type FullReason, type Manifest, type ManifestDisk } from '../repository';

export type DiskPlan =
  | { mode: 'full'; reason: FullReason; previous: ManifestDisk | undefined }
  | { mode: 'incremental'; reason: 'incremental'; previous: ManifestDisk; bitmap: DirtyBitmap };

/**
 * Decides, for one disk, whether the bitmap in QEMU can be trusted to list every change since
 * the VM's last restore point. Any doubt means a full copy of that disk: a needless full costs
 * time (dedup keeps its storage small), a wrong incremental silently loses data.
 */
export function planDisk(
  device: BlockDevice,
  parent: Manifest | undefined,
  opts: { forceFull: boolean; parentDamage?: Pick<DamageMark, 'devices'> | null },
): DiskPlan {
  const previous = parent?.disks.find((d) => d.device === device.deviceId);
  if (!parent || !previous) return { mode: 'full', reason: 'first-backup', previous };
  if (opts.forceFull) return { mode: 'full', reason: 'forced', previous };
  // the engine's checkpoints tracked the time since the parent, not our bitmaps (and a bitmap
  // named like the parent's may be the engine's own): only a full is known to be complete
  if (readPointMeta(parent).method === 'engine') return { mode: 'full', reason: 'method-changed', previous };
  // verify found a bad chunk (or index) of this disk in the parent: an incremental would carry
  // the bad reference over; a full re-reads every block and stores the lost chunks again.
  const damage = opts.parentDamage;
  if (damage && (damage.devices === null || damage.devices.includes(device.deviceId))) return { mode: 'full', reason: 'parent-damaged', previous };
  if (previous.virtualSize !== device.virtualSize) return { mode: 'full', reason: 'disk-resized', previous };
  const bitmap = device.bitmaps.find((b) => b.name === previous.bitmap);
  // An external snapshot put a new top node over the disk: the guest writes there, and the
  // bitmap left on the old top stopped counting at that instant (reference §6.2).
  if (!bitmap && previous.node !== device.nodeName) return { mode: 'full', reason: 'node-changed', previous };
  if (!bitmap) return { mode: 'full', reason: 'bitmap-missing', previous };
  if (bitmap.inconsistent) return { mode: 'full', reason: 'bitmap-inconsistent', previous };
  if (bitmap.busy) return { mode: 'full', reason: 'bitmap-busy', previous };
  if (!bitmap.recording) return { mode: 'full', reason: 'bitmap-not-recording', previous };
  return { mode: 'incremental', reason: 'incremental', previous, bitmap };
}
