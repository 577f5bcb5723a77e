import { mkdirSync } from 'fs';
import * as path from 'path';
import { operationFailed } from './faults';
import { qemuFormat, readImage } from './images';
import { SimQemu, type QemuDisk } from './qemu';
import type { SimDiskRecord, SimHostRecord, SimState, SimVmRecord } from './state';

export interface SimDirs {
  qmpDir: string;
  runDir: string;
  logDir: string;
  scratchDir: string;
}

/**
 * VM power as vdsm would do it: one QEMU per running VM. The engine-visible status lives in the
 * state (up, paused for a VM started with pause=true, down); it follows the process: a QEMU that
 * dies unasked turns its VM 'down' with an error event, as the engine reports a crashed VM.
 */
export class VmPower {
  private readonly procs = new Map<string, SimQemu>();

  constructor(
    private readonly state: SimState,
    readonly dirs: SimDirs,
  ) {
    for (const d of [dirs.qmpDir, dirs.runDir, dirs.logDir, dirs.scratchDir]) mkdirSync(d, { recursive: true });
  }

  productQmp(vmId: string): string {
    return path.join(this.dirs.qmpDir, `${vmId}.qmp`);
  }

  process(vmId: string): SimQemu | undefined {
    const p = this.procs.get(vmId);
    return p?.running ? p : undefined;
  }

  /**
   * The engine's RunVm: refuses a running VM and locked disks; `paused` = start with pause=true.
   * The VM is placed on `o.hostId` (an engine restart bringing a VM back where it ran), else its
   * pinned host, else the host with the fewest running VMs (ties: the first).
   */
  async start(vm: SimVmRecord, paused: boolean, o: { hostId?: string } = {}): Promise<void> {
    if (vm.status === 'paused' && !paused && this.process(vm.id)) {
      vm.status = 'up'; // starting a paused VM resumes it
      this.state.save();
      return;
    }
    if (vm.status !== 'down') throw operationFailed(409, 'Cannot run VM. VM is running.');
    const disks = this.activeDisks(vm);
    const locked = disks.filter((d) => d.status === 'locked').map((d) => d.alias);
    if (locked.length > 0) throw operationFailed(409, `Cannot run VM: The following disks are locked: ${locked.join(', ')}. Please try again in a few minutes.`);
    const illegal = disks.filter((d) => d.status === 'illegal').map((d) => d.alias);
    if (illegal.length > 0) throw operationFailed(409, `Cannot run VM. VM ${vm.name} has illegal images: ${illegal.join(', ')}.`);
    const host = this.place(vm, o.hostId);
    vm.status = 'wait_for_launch';
    vm.runOnHostId = host.id;
    this.state.save();
    try {
      const proc = await SimQemu.launch({
        vmId: vm.id,
        name: vm.name,
        memoryMiB: 128,
        disks: disks.map((d) => this.qemuDisk(vm, d)),
        productQmp: this.productQmp(vm.id),
        privateQmp: path.join(this.dirs.runDir, `${vm.id}.sim.qmp`),
        logFile: path.join(this.dirs.logDir, `${vm.id}.qemu.log`),
        scratchDir: this.dirs.scratchDir,
        onExit: (why, requested) => this.onExit(vm.id, why, requested),
      });
      this.procs.set(vm.id, proc);
    } catch (err) {
      vm.status = 'down';
      vm.stopTime = Date.now();
      delete vm.runOnHostId;
      this.state.save();
      this.state.addEvent({ code: 119, severity: 'error', description: `VM ${vm.name} is down with error. Exit message: ${(err as Error).message}.`, origin: 'oVirt', vmId: vm.id, hostId: host.id });
      throw operationFailed(500, `Cannot run VM ${vm.name}: ${(err as Error).message}`);
    }
    vm.status = paused ? 'paused' : 'up';
    vm.startTime = Date.now();
    delete vm.stopReason;
    this.state.save();
    this.state.addEvent({
      code: paused ? 68 : 32,
      severity: 'normal',
      description: paused ? `VM ${vm.name} started on Host ${host.name} in paused mode` : `VM ${vm.name} started on Host ${host.name}`,
      origin: 'oVirt',
      vmId: vm.id,
      hostId: host.id,
    });
  }

  /** Where RunVm puts a VM: `wanted` if it exists, else the pinned host, else the least busy one. */
  private place(vm: SimVmRecord, wanted: string | undefined): SimHostRecord {
    const st = this.state;
    const fixed = (wanted ? st.host(wanted) : undefined) ?? (vm.pinnedHostId ? st.host(vm.pinnedHostId) : undefined);
    if (fixed) return fixed;
    if (vm.pinnedHostId) throw operationFailed(409, `Cannot run VM. The host ${vm.pinnedHostId} the VM is pinned to does not exist.`);
    let best = st.firstHost();
    let load = st.vmsOnHost(best.id).filter((v) => v !== vm).length;
    for (const h of st.data.hosts) {
      const n = st.vmsOnHost(h.id).filter((v) => v !== vm).length;
      if (n < load) [best, load] = [h, n];
    }
    return best;
  }

  /** StopVm (power off): QEMU quits; also what shutdown does here (the guest never runs). */
  async stop(vm: SimVmRecord, reason?: string): Promise<void> {
    const proc = this.process(vm.id);
    if (vm.status === 'down' || !proc) throw operationFailed(409, 'Cannot stop VM. VM is not running.');
    vm.status = 'powering_down';
    this.state.save();
    await proc.quit();
    this.procs.delete(vm.id);
    const host = this.state.hostOfVm(vm) ?? this.state.firstHost();
    vm.status = 'down';
    vm.stopTime = Date.now();
    delete vm.runOnHostId;
    if (reason) vm.stopReason = reason;
    this.state.save();
    this.state.addEvent({ code: 33, severity: 'normal', description: `VM ${vm.name} powered off by admin@internal-authz (Host: ${host.name})${reason ? ` (Reason: ${reason})` : ''}.`, origin: 'oVirt', vmId: vm.id, hostId: host.id });
  }

  async hotplug(vm: SimVmRecord, disk: SimDiskRecord): Promise<void> {
    const proc = this.process(vm.id);
    if (proc) await proc.hotplug(this.qemuDisk(vm, disk));
  }

  async guestWrite(vmId: string, diskId: string, offset: number, data: Buffer): Promise<void> {
    const proc = this.process(vmId);
    if (!proc) throw new Error(`vm ${vmId} is not running: guest writes need a running VM`);
    await proc.guestWrite(diskId, offset, data);
  }

  async diskBytes(vmId: string, disk: SimDiskRecord): Promise<Buffer> {
    const proc = this.process(vmId);
    const vm = this.state.vm(vmId);
    if (proc && vm?.attachments.some((a) => a.diskId === disk.id && a.active)) await proc.qemuIo(disk.id, 'flush');
    return readImage(this.state.abs(disk.file), disk.format, this.dirs.scratchDir);
  }

  /** Test hook: QEMU dies as in a crash. */
  async crash(vmId: string): Promise<void> {
    await this.process(vmId)?.kill();
  }

  /** Engine shutdown: every QEMU quits; the VMs keep their status in the saved state. */
  async closeAll(): Promise<void> {
    const all = [...this.procs.values()];
    this.procs.clear();
    await Promise.all(all.map((p) => p.quit()));
  }

  private activeDisks(vm: SimVmRecord): SimDiskRecord[] {
    return vm.attachments
      .filter((a) => a.active)
      .map((a) => this.state.disk(a.diskId))
      .filter((d): d is SimDiskRecord => d !== undefined);
  }

  private qemuDisk(vm: SimVmRecord, d: SimDiskRecord): QemuDisk {
    const readOnly = vm.attachments.find((a) => a.diskId === d.id)?.readOnly ?? false;
    return { diskId: d.id, file: this.state.abs(d.file), format: qemuFormat(d.format), readOnly };
  }

  private onExit(vmId: string, why: string, requested: boolean): void {
    if (requested) return; // stop() / closeAll() set the status themselves
    this.procs.delete(vmId);
    const vm = this.state.vm(vmId);
    if (!vm) return;
    const hostId = vm.runOnHostId;
    vm.status = 'down';
    vm.stopTime = Date.now();
    delete vm.stopReason;
    delete vm.runOnHostId;
    this.state.save();
    this.state.addEvent({ code: 119, severity: 'error', description: `VM ${vm.name} is down with error. Exit message: qemu ${why}.`, origin: 'oVirt', vmId, hostId });
  }
}
