import { randomUUID } from 'crypto';
import { sleep } from '../../backend/src/util/abort';
import { formatNode, liveBitmaps, type BitmapPlan, type DiskExport } from './backupLive';
import { imageBitmaps, removeImageBitmap } from './backupCold';
import { BackupData, type Running } from './backupData';
import { qemuFormat } from './images';
import type { VmPower } from './power';
import type { SimBackupRecord, SimCheckpointRecord, SimDiskRecord, SimState, SimVmRecord } from './state';

/**
 * The engine's VM backups and checkpoints (reference §4): StartVmBackup's life cycle
 * (initializing -> starting -> ready -> finalizing -> succeeded | failed) run on the VM's QEMU
 * (live, backupLive.ts) or on the volumes (cold, backupCold.ts); checkpoints as persistent
 * bitmaps named by their ids; removal of checkpoints (re-parenting the child); the VM lock while
 * a backup runs; the audit events; finished backups dropped after the cleanup time. Validation
 * of requests is the route's (routes/backups.ts); this module does what the commands do.
 */

/** AuditLogType codes of the backup events. */
const EV = { started: 10790, fullNeeded: 10791, failed: 10792, succeeded: 10793, finalized: 10794, checkpointDeleted: 10797, checkpointDeleteFailed: 10798 };

export const isFinished = (b: SimBackupRecord): boolean => b.phase === 'succeeded' || b.phase === 'failed';

export class Backups {
  private readonly running = new Map<string, Running>();
  private readonly data: BackupData;
  private readonly removing = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  /** SucceededBackupCleanupTimeInMinutes / FailedBackupCleanupTimeInMinutes (15 / 30 min) */
  cleanup = { succeededMs: 15 * 60_000, failedMs: 30 * 60_000 };
  /** how long each phase step takes (the engine needs seconds; tests want it short) */
  stepDelayMs = 100;
  /** test hook: the next backup fails in this phase */
  failNextIn: 'initializing' | 'starting' | undefined;

  constructor(
    private readonly state: SimState,
    private readonly power: VmPower,
    runDir: string,
  ) {
    this.data = new BackupData(state, power, runDir);
    // a backup that was in progress when the simulator stopped lost its exports with the
    // processes: the engine marks such a backup failed (VM_BACKUP_FAILED_UNMONITORED)
    for (const b of state.data.backups.filter((x) => !isFinished(x))) {
      const vm = state.vm(b.vmId);
      this.setPhase(b, 'failed');
      state.addEvent({ code: 10795, severity: 'warning', description: `Backup ${b.id} for VM ${vm?.name ?? b.vmId} was marked as failed since it is no longer monitored, cleanup may be required.`, origin: 'oVirt', vmId: b.vmId });
    }
    this.timer = setInterval(() => this.sweep(), 1000);
    this.timer.unref();
  }

  ofVm(vmId: string): SimBackupRecord[] {
    this.sweep();
    return this.state.data.backups.filter((b) => b.vmId === vmId);
  }

  get(id: string): SimBackupRecord | undefined {
    this.sweep();
    return this.state.data.backups.find((b) => b.id === id);
  }

  checkpointsOf(vmId: string): SimCheckpointRecord[] {
    return this.state.data.checkpoints.filter((c) => c.vmId === vmId);
  }

  /** The snapshots hybrid backups of the VM hold (they go at finalize). */
  snapshotsOf(vmId: string): Array<{ id: string; date: number }> {
    return this.state.data.backups.filter((b) => b.vmId === vmId && b.snapshotId && !isFinished(b)).map((b) => ({ id: b.snapshotId ?? '', date: b.creationDate }));
  }

  checkpoint(id: string): SimCheckpointRecord | undefined {
    return this.state.data.checkpoints.find((c) => c.id === id);
  }

  /** The VM is locked by a backup that has not finished (isVmDuringBackup). */
  inBackup(vmId: string): boolean {
    return this.state.data.backups.some((b) => b.vmId === vmId && !isFinished(b));
  }

  removingCheckpoint(vmId: string): boolean {
    return this.removing.has(vmId);
  }

  exportOf(backupId: string, diskId: string): DiskExport | undefined {
    return this.running.get(backupId)?.exports.get(diskId);
  }

  /** Records the backup (phase initializing) and runs it in the background. */
  start(vm: SimVmRecord, p: { id?: string; disks: SimDiskRecord[]; fromCheckpointId?: string; description?: string; requireConsistency: boolean; hostId: string; userName: string; hybrid: boolean }): SimBackupRecord {
    const from = p.fromCheckpointId ? this.checkpoint(p.fromCheckpointId) : undefined;
    const capable = p.disks.filter((d) => bitmapCapable(d));
    const now = Date.now();
    const b: SimBackupRecord = {
      id: p.id ?? randomUUID(),
      vmId: vm.id,
      phase: 'initializing',
      fromCheckpointId: p.fromCheckpointId,
      toCheckpointId: capable.length > 0 ? randomUUID() : undefined,
      disks: p.disks.map((d) => ({ diskId: d.id, backupMode: from && from.diskIds.includes(d.id) && bitmapCapable(d) ? 'incremental' : 'full' })),
      hostId: p.hostId,
      live: vm.status !== 'down',
      snapshotId: p.hybrid ? randomUUID() : undefined,
      creationDate: now,
      modificationDate: now,
      description: p.description,
      requireConsistency: p.requireConsistency,
    };
    this.state.data.backups.push(b);
    this.state.save();
    this.event(b, EV.started, 'normal', `Backup ${b.id} for VM ${vm.name} started (User: ${p.userName}-authz).`);
    const r: Running = { exports: new Map(), run: Promise.resolve() };
    this.running.set(b.id, r);
    r.run = this.run(b, r, p.userName);
    return b;
  }

  /** StopVmBackup: exports and temporary bitmaps go, the checkpoint stays; finished backups are left as they are. */
  async finalize(b: SimBackupRecord, userName: string): Promise<void> {
    const r = this.running.get(b.id);
    if (r) await r.run;
    if (isFinished(b) || b.phase === 'finalizing') return;
    // a legacy live backup whose VM went down meanwhile lost its scratch disks and exports
    const lost = b.live && !b.snapshotId && !this.power.process(b.vmId);
    this.setPhase(b, 'finalizing');
    this.event(b, EV.finalized, 'normal', `Backup ${b.id} for VM ${this.vmName(b)} finalized (User: ${userName}-authz).`);
    await sleep(this.stepDelayMs);
    try {
      await this.teardown(b, false);
      if (lost) throw new Error('the VM went down during the backup');
      this.setPhase(b, 'succeeded');
      this.event(b, EV.succeeded, 'normal', `Backup ${b.id} for VM ${this.vmName(b)} completed successfully (User: ${userName}-authz).`);
    } catch (err) {
      this.setPhase(b, 'failed');
      this.event(b, EV.failed, 'error', `Backup ${b.id} for VM ${this.vmName(b)} failed (User: ${userName}-authz). ${(err as Error).message}`);
    }
  }

  /** DeleteVmCheckpoint (asynchronous): its bitmap removed from every disk, the child re-parented. */
  removeCheckpoint(cp: SimCheckpointRecord, userName: string): void {
    this.removing.add(cp.vmId);
    void (async () => {
      const vm = this.state.vm(cp.vmId);
      try {
        await sleep(this.stepDelayMs);
        for (const diskId of cp.diskIds) await this.dropBitmap(cp.vmId, diskId, cp.id);
        for (const c of this.state.data.checkpoints) if (c.parentId === cp.id) c.parentId = cp.parentId;
        this.state.data.checkpoints = this.state.data.checkpoints.filter((c) => c.id !== cp.id);
        this.state.save();
        this.state.addEvent({ code: EV.checkpointDeleted, severity: 'normal', description: `Checkpoint ${cp.id} for VM ${vm?.name ?? cp.vmId} deleted (User: ${userName}-authz).`, origin: 'oVirt', vmId: cp.vmId });
      } catch (err) {
        this.state.addEvent({ code: EV.checkpointDeleteFailed, severity: 'error', description: `Failed to delete checkpoint ${cp.id} for VM ${vm?.name ?? cp.vmId} (User: ${userName}-authz). ${(err as Error).message}`, origin: 'oVirt', vmId: cp.vmId });
      } finally {
        this.removing.delete(cp.vmId);
      }
    })();
  }

  /** Test hook: a snapshot revert made the VM's checkpoints invalid (the engine marks them all). */
  invalidateCheckpoints(vmId: string): void {
    for (const c of this.checkpointsOf(vmId)) c.state = 'invalid';
    this.state.save();
  }

  /** Test hook / removal: the checkpoint's bitmap gone from one disk (live QEMU or the image). */
  async dropBitmap(vmId: string, diskId: string, name: string): Promise<void> {
    const disk = this.state.disk(diskId);
    if (!disk || disk.format !== 'cow') return;
    const proc = this.power.process(vmId);
    const vm = this.state.vm(vmId);
    if (proc && vm?.attachments.some((a) => a.diskId === diskId && a.active)) {
      const node = await formatNode(proc.monitor, diskId);
      if ((await liveBitmaps(proc.monitor, node)).includes(name)) await proc.monitor.execute('block-dirty-bitmap-remove', { node, name });
      return;
    }
    const file = this.state.abs(disk.file);
    if ((await imageBitmaps(file, 'qcow2')).includes(name)) await removeImageBitmap(file, name);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.timer);
    for (const [id, r] of [...this.running.entries()]) {
      await r.run.catch(() => undefined);
      const b = this.state.data.backups.find((x) => x.id === id);
      if (b) await this.teardown(b, false).catch(() => undefined);
    }
  }

  private async run(b: SimBackupRecord, r: Running, userName: string): Promise<void> {
    const vm = this.state.vm(b.vmId);
    try {
      if (!vm) throw new Error('the VM is gone');
      await sleep(this.stepDelayMs);
      if (this.takeFault('initializing')) throw new Error('simulated failure while initializing');
      const plans = this.plans(b);
      const missing = await this.missingBitmaps(b, plans);
      if (missing.length > 0) {
        this.event(b, EV.fullNeeded, 'error', `Incremental backup ${b.id} for VM ${vm.name} failed. Full backup is now needed (User: ${userName}-authz).`);
        throw new Error(`checkpoint bitmaps missing: ${missing.join(', ')}`);
      }
      await this.data.start(b, vm, plans, r);
      if (b.live) {
        this.setPhase(b, 'starting');
        await sleep(this.stepDelayMs);
        if (this.takeFault('starting')) throw new Error('simulated failure while starting');
      }
      if (b.toCheckpointId) {
        const parent = this.checkpointsOf(b.vmId).at(-1);
        const cp: SimCheckpointRecord = { id: b.toCheckpointId, vmId: b.vmId, parentId: parent?.id, creationDate: Date.now(), state: 'created', diskIds: plans.filter((p) => p.addCheckpoint).map((p) => p.diskId) };
        this.state.data.checkpoints.push(cp);
      }
      this.setPhase(b, 'ready');
    } catch (err) {
      await this.teardown(b, true).catch(() => undefined);
      this.setPhase(b, 'failed');
      this.event(b, EV.failed, 'error', `Backup ${b.id} for VM ${vm?.name ?? b.vmId} failed (User: ${userName}-authz). ${(err as Error).message}`);
    }
  }

  /** Per disk: the checkpoint bitmap to add, and for incremental disks the bitmaps to merge. */
  private plans(b: SimBackupRecord): BitmapPlan[] {
    const chain: SimCheckpointRecord[] = [];
    for (let c = b.fromCheckpointId ? this.checkpoint(b.fromCheckpointId) : undefined; c; c = this.state.data.checkpoints.find((x) => x.parentId === c?.id)) chain.push(c);
    return b.disks.map((d) => {
      const disk = this.state.disk(d.diskId);
      return {
        diskId: d.diskId,
        addCheckpoint: disk && bitmapCapable(disk) ? b.toCheckpointId : undefined,
        mergeFrom: d.backupMode === 'incremental' ? chain.filter((c) => c.diskIds.includes(d.diskId)).map((c) => c.id) : undefined,
      };
    });
  }

  /** Checkpoint bitmaps an incremental disk lacks (the engine then cannot redefine the checkpoint). */
  private async missingBitmaps(b: SimBackupRecord, plans: BitmapPlan[]): Promise<string[]> {
    const out: string[] = [];
    for (const p of plans.filter((x) => x.mergeFrom)) {
      const disk = this.state.disk(p.diskId);
      if (!disk) continue;
      const proc = b.live ? this.power.process(b.vmId) : undefined;
      const have = proc ? await liveBitmaps(proc.monitor, await formatNode(proc.monitor, p.diskId)) : await imageBitmaps(this.state.abs(disk.file), qemuFormat(disk.format));
      for (const name of p.mergeFrom ?? []) if (!have.includes(name)) out.push(`${name} on disk ${disk.alias}`);
    }
    return out;
  }

  private async teardown(b: SimBackupRecord, failed: boolean): Promise<void> {
    const r = this.running.get(b.id);
    if (!r) return;
    this.running.delete(b.id);
    await this.data.stop(b, r, failed);
  }

  private takeFault(phase: 'initializing' | 'starting'): boolean {
    if (this.failNextIn !== phase) return false;
    this.failNextIn = undefined;
    return true;
  }

  private setPhase(b: SimBackupRecord, phase: SimBackupRecord['phase']): void {
    b.phase = phase;
    b.modificationDate = Date.now();
    this.state.save();
  }

  private vmName(b: SimBackupRecord): string {
    return this.state.vm(b.vmId)?.name ?? b.vmId;
  }

  private event(b: SimBackupRecord, code: number, severity: 'normal' | 'error', description: string): void {
    this.state.addEvent({ code, severity, description, origin: 'oVirt', vmId: b.vmId });
  }

  /** Finished backups leave the database after the cleanup time. */
  private sweep(): void {
    const now = Date.now();
    const keep = this.state.data.backups.filter((b) => !isFinished(b) || now - b.modificationDate < (b.phase === 'succeeded' ? this.cleanup.succeededMs : this.cleanup.failedMs));
    if (keep.length === this.state.data.backups.length) return;
    this.state.data.backups = keep;
    this.state.save();
  }
}

/** A disk that can hold checkpoint bitmaps: qcow2 with backup=incremental (ImagesHandler). */
export const bitmapCapable = (d: SimDiskRecord): boolean => d.format === 'cow' && d.backup === 'incremental';

