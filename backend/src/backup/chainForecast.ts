import type { Vm } from '../engine';
import type { PointMethod } from '../repository/model';
import { isExcludedFromBackup } from '../engine/model';
import type { DiskChainHealth } from './model';

/** What the forecast needs of the VM's last restore point (the catalog's summary has it). */
export interface LastPoint {
  createdAt: string;
  /** The method that made it; absent = `qmp` (points from before the engine method). */
  method?: PointMethod;
  disks: ReadonlyArray<{ diskId: string | null; virtualSize: number; bitmapPersistent: boolean }>;
}

/**
 * What the next backup of each of a VM's disks will be, foreseen from the engine's view of the
 * VM and its last restore point, without touching QEMU (the list page must stay cheap). The
 * backup itself decides from QEMU's bitmaps; this forecast errs on the side of saying "full":
 * - no point, or a disk the last point does not have → first backup;
 * - a size that differs from the point's → resized;
 * - the point made by the other method than the one the next backup will use → method changed;
 * - QMP method: a bitmap kept in QEMU's memory only (raw disks, qcow2 v2) whose QEMU has
 *   stopped or restarted since the point → the bitmap is gone;
 * - engine method: a disk whose `backup` is not `incremental` → the engine copies it whole
 *   every time (the fix: enable incremental backup on the disk).
 * `method`: the method the VM's next backup will use (`auto` resolved by the caller).
 */
export function chainHealth(vm: Vm, last: LastPoint | undefined, method: PointMethod = 'qmp'): DiskChainHealth[] {
  const out: DiskChainHealth[] = [];
  for (const a of vm.diskAttachments ?? []) {
    const disk = a.disk;
    if (!a.active || !disk) continue;
    const base = { diskId: disk.id, alias: disk.alias };
    if (isExcludedFromBackup(disk.description)) {
      out.push({ ...base, state: 'ok', reason: 'excluded', excluded: true });
      continue;
    }
    const prev = last?.disks.find((d) => d.diskId === disk.id);
    if (!last || !prev) {
      out.push({ ...base, state: 'will-be-full', reason: 'first-backup', excluded: false });
    } else if ((last.method ?? 'qmp') !== method) {
      out.push({ ...base, state: 'will-be-full', reason: 'method-changed', excluded: false });
    } else if (disk.provisionedSize !== undefined && disk.provisionedSize !== prev.virtualSize) {
      out.push({ ...base, state: 'will-be-full', reason: 'disk-resized', excluded: false });
    } else if (method === 'engine' && disk.backup !== 'incremental') {
      out.push({ ...base, state: 'will-be-full', reason: 'disk-not-incremental', excluded: false });
    } else if (method === 'qmp' && !prev.bitmapPersistent && qemuRestartedSince(vm, last.createdAt)) {
      out.push({ ...base, state: 'will-be-full', reason: 'bitmap-missing', excluded: false });
    } else {
      out.push({ ...base, state: 'ok', reason: null, excluded: false });
    }
  }
  return out;
}

/** The QEMU that held an in-memory bitmap at `since` is not the one running now (or none runs).
 *  A VM that is down will be started anew by its backup. */
function qemuRestartedSince(vm: Vm, since: string): boolean {
  if (vm.status === 'down' || vm.status === 'unknown') return true;
  return vm.startTime !== undefined && vm.startTime.getTime() > Date.parse(since);
}
