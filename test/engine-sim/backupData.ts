import * as path from 'path';
import { GuestAgentClient } from '../../backend/src/qmp';
import { startCold, stopCold, type ColdHandle } from './backupCold';
import { startHybridCold, startHybridLive, stopHybridCold, stopHybridLive, type HybridHandle } from './backupHybrid';
import { startLive, stopLive, type BitmapPlan, type DiskExport, type LiveHandle } from './backupLive';
import { qemuFormat } from './images';
import type { VmPower } from './power';
import type { SimBackupRecord, SimState, SimVmRecord } from './state';

/**
 * Where a backup's data comes from, per mode: live (fleecing on the VM's QEMU), cold (the
 * volumes), hybrid (a snapshot's frozen volumes, live or down); the guest freeze around a live
 * start; and the teardown. The disk records follow a hybrid snapshot: while it exists a disk's
 * active volume is the overlay (format cow), as the engine shows it.
 */

export interface Running {
  exports: Map<string, DiskExport>;
  live?: { handle: LiveHandle; vmId: string };
  cold?: ColdHandle;
  hybrid?: { handle: HybridHandle; vmId: string; live: boolean };
  run: Promise<void>;
}

export class BackupData {
  constructor(
    private readonly state: SimState,
    private readonly power: VmPower,
    private readonly runDir: string,
  ) {}

  async start(b: SimBackupRecord, vm: SimVmRecord, plans: BitmapPlan[], r: Running): Promise<void> {
    const disks = plans.map((p) => {
      const d = this.state.disk(p.diskId);
      if (!d) throw new Error(`disk ${p.diskId} is gone`);
      return { diskId: d.id, file: this.state.abs(d.file), imageId: d.imageId, format: qemuFormat(d.format), size: d.provisionedSize };
    });
    let exports: DiskExport[];
    if (b.live) {
      const proc = this.power.process(vm.id);
      if (!proc) throw new Error('the VM is not running');
      const agent = await this.freeze(vm, b.requireConsistency);
      try {
        if (b.snapshotId) {
          const started = await startHybridLive(proc.monitor, { backupId: b.id, vmId: vm.id, runDir: this.runDir, plans, disks });
          r.hybrid = { handle: started.handle, vmId: vm.id, live: true };
          exports = started.exports;
        } else {
          const sizes = new Map(disks.map((d) => [d.diskId, d.size]));
          const started = await startLive(proc.monitor, { backupId: b.id, vmId: vm.id, runDir: this.runDir, disks: plans, sizes });
          r.live = { handle: started.handle, vmId: vm.id };
          exports = started.exports;
        }
      } finally {
        await this.thaw(agent);
      }
    } else if (b.snapshotId) {
      const started = await startHybridCold({ backupId: b.id, runDir: this.runDir, plans, disks });
      r.hybrid = { handle: started.handle, vmId: vm.id, live: false };
      exports = started.exports;
    } else {
      const started = await startCold({ backupId: b.id, runDir: this.runDir, disks: plans.map((p, i) => ({ ...p, file: disks[i]?.file ?? '', format: disks[i]?.format ?? 'qcow2' })) });
      r.cold = started.handle;
      exports = started.exports;
    }
    for (const e of exports) r.exports.set(e.diskId, e);
    // the snapshot's overlays are the disks' active volumes now
    for (const d of r.hybrid?.handle.disks ?? []) this.pointDisk(d.diskId, d.overlayFile, d.overlayImageId, 'cow');
  }

  /** Exports and temporary state go; `failed`: the checkpoint's bitmap too (it never was). */
  async stop(b: SimBackupRecord, r: Running, failed: boolean): Promise<void> {
    r.exports.clear();
    const removeCheckpoint = failed ? b.toCheckpointId : undefined;
    if (r.live) {
      const proc = this.power.process(r.live.vmId);
      await stopLive(proc ? proc.monitor : ({ closed: true } as never), r.live.handle, { removeCheckpoint });
    }
    if (r.cold) await stopCold(r.cold, { removeCheckpoint });
    const h = r.hybrid;
    if (h) {
      const checkpoints = this.state.data.checkpoints.filter((c) => c.vmId === b.vmId && c.id !== removeCheckpoint).map((c) => c.id);
      const proc = this.power.process(h.vmId);
      // the snapshot goes as the VM is now: merged live by QEMU, or by qemu-img when it is down
      if (proc && h.live) await stopHybridLive(proc.monitor, h.handle, checkpoints);
      else await stopHybridCold(h.handle, checkpoints);
      for (const d of h.handle.disks) this.pointDisk(d.diskId, d.baseFile, d.baseImageId, d.baseFormat === 'qcow2' ? 'cow' : 'raw');
    }
  }

  private pointDisk(diskId: string, file: string, imageId: string, format: 'cow' | 'raw'): void {
    const disk = this.state.disk(diskId);
    if (!disk) return;
    disk.file = path.relative(this.state.dataDir, file);
    disk.imageId = imageId;
    disk.format = format;
    this.state.save();
  }

  /**
   * vdsm freezes the guest's file systems through the guest agent (the channel at
   * `<qmpDir>/<vmId>.qga`, where a test's fake agent sits) around the backup's start; a failed
   * freeze fails the backup only with require_consistency=true, else it goes on crash-consistent.
   */
  private async freeze(vm: SimVmRecord, required: boolean): Promise<GuestAgentClient | undefined> {
    const sock = this.power.productQmp(vm.id).replace(/\.qmp$/, '.qga');
    let agent: GuestAgentClient | undefined;
    try {
      agent = await GuestAgentClient.connectUnix(sock, { label: `guest agent of ${vm.name}`, timeoutMs: 2000 });
      await agent.fsfreezeFreeze({ timeoutMs: 5000 });
      return agent;
    } catch (err) {
      await this.thaw(agent);
      if (required) throw new Error(`Failed to freeze guest file systems of VM ${vm.name}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async thaw(agent: GuestAgentClient | undefined): Promise<void> {
    if (!agent) return;
    try {
      await agent.fsfreezeThaw({ timeoutMs: 5000 }).catch(() => undefined);
    } finally {
      await agent.close().catch(() => undefined);
    }
  }
}
