import { spawn, type ChildProcess } from 'child_process';
import { randomUUID } from 'crypto';
import { promises as fs, mkdirSync } from 'fs';
import * as path from 'path';
import { NbdClient } from '../../backend/src/nbd';
import { sleep } from '../../backend/src/util/abort';
import { qemuFormat } from './images';
import type { SimDiskRecord, SimState } from './state';
import { waitForSockets } from '../helpers/waitForSockets';

export type TransferPhase =
  | 'initializing'
  | 'transferring'
  | 'paused_system'
  | 'paused_user'
  | 'resuming'
  | 'cancelled_system'
  | 'cancelled_user'
  | 'finalizing_success'
  | 'finalizing_failure'
  | 'finalizing_cleanup'
  | 'finished_success'
  | 'finished_failure'
  | 'finished_cleanup';

export interface SimTransfer {
  id: string;
  ticket: string;
  diskId: string;
  diskFormat: 'cow' | 'raw';
  direction: 'upload' | 'download';
  format: 'raw';
  phase: TransferPhase;
  inactivityTimeout: number;
  timeoutPolicy: 'legacy' | 'pause' | 'cancel';
  shallow: boolean;
  /** the host whose imageio serves it (`host` in the API) */
  hostId: string;
  transferred: number;
  inflight: number;
  lastActivity: number;
  size: number;
  /** the NBD backend (imageio's "format=raw" path), present while transferring */
  nbd?: NbdClient;
  /** a backup download: the backup it reads, and the dirty-bitmap meta context for context=dirty */
  backupId?: string;
  dirtyContext?: string;
}

/** A backup's NBD export of one disk (backups.ts): what a backup transfer reads instead of the image. */
export interface BackupSource {
  backupId: string;
  socket: string;
  exportName: string;
  /** set only for an incremental disk of an incremental backup (the engine's ticket `dirty` flag) */
  dirtyContext?: string;
}

/** A test fault on the next imageio GET of a ticket (EngineSim.imageioFaultNext). */
export interface ImageioFault {
  kind: 'error' | 'hang' | 'truncate';
  /** the transfer's id; absent = any transfer */
  transferId?: string;
}

interface Backend {
  proc: ChildProcess;
  sock: string;
}

/**
 * Image transfers as the engine runs them (reference §5): created in `initializing`, the
 * disk is locked, then the ticket is live (`transferring`, URLs set) once the data server is up;
 * finalize -> finalizing_success -> finished_success (disk ok again); cancel -> cancelled_user ->
 * finalizing_failure -> finished_failure, and a cancelled upload deletes its disk. Inactivity
 * (no request in flight for inactivity_timeout s) acts per timeout_policy (§5.3). Finished
 * transfers stay listed (4.4.7+ behaviour).
 *
 * Data path: one qemu-nbd per transfer on the disk's image (qcow2 or raw, so a raw-format
 * transfer sees guest data and an upload into qcow2 is converted on the fly, like imageio's NBD
 * backend), reached with the project's own NbdClient.
 */
export class Transfers {
  private readonly all = new Map<string, SimTransfer>();
  private readonly backends = new Map<string, Backend>();
  private readonly timer: NodeJS.Timeout;
  /** delay before `initializing` turns into `transferring` (the engine takes a few seconds) */
  initDelayMs = 150;
  /** pending imageio faults (first match wins, used once) and the sockets of hung requests */
  readonly imageioFaults: ImageioFault[] = [];
  readonly hung = new Set<{ destroy: () => void }>();

  constructor(
    private readonly state: SimState,
    private readonly runDir: string,
    private readonly deleteDisk: (disk: SimDiskRecord) => Promise<void>,
  ) {
    mkdirSync(runDir, { recursive: true });
    this.timer = setInterval(() => this.checkInactivity(), 1000);
    this.timer.unref();
  }

  list(): SimTransfer[] {
    return [...this.all.values()];
  }

  get(id: string): SimTransfer | undefined {
    return this.all.get(id);
  }

  byTicket(ticket: string): SimTransfer | undefined {
    return [...this.all.values()].find((t) => t.ticket === ticket && t.phase === 'transferring');
  }

  /**
   * Validation is the caller's; this locks the disk and brings the ticket up asynchronously.
   * A backup transfer (`backup`) reads the backup's export and leaves the disk alone: the backup
   * holds the locks (TransferDiskImageCommand takes none for backups).
   */
  create(disk: SimDiskRecord, p: { direction: 'upload' | 'download'; inactivityTimeout: number; timeoutPolicy: 'legacy' | 'pause' | 'cancel'; shallow: boolean; hostId: string; backup?: BackupSource }): SimTransfer {
    const t: SimTransfer = {
      id: randomUUID(),
      ticket: randomUUID(),
      diskId: disk.id,
      diskFormat: disk.format,
      direction: p.direction,
      format: 'raw',
      phase: 'initializing',
      inactivityTimeout: p.inactivityTimeout,
      timeoutPolicy: p.timeoutPolicy,
      shallow: p.shallow,
      hostId: p.hostId,
      transferred: 0,
      inflight: 0,
      lastActivity: Date.now(),
      size: disk.provisionedSize,
      backupId: p.backup?.backupId,
      dirtyContext: p.backup?.dirtyContext,
    };
    this.all.set(t.id, t);
    if (!p.backup) disk.status = 'locked';
    this.state.save();
    const backup = p.backup;
    void this.bringUp(t, disk, backup ? () => this.openBackup(backup) : () => this.openDisk(t, disk));
    return t;
  }

  async finalize(t: SimTransfer): Promise<void> {
    t.phase = 'finalizing_success';
    await this.teardown(t, true);
    const disk = this.state.disk(t.diskId);
    if (disk && !t.backupId) disk.status = 'ok';
    t.phase = 'finished_success';
    this.state.save();
    this.state.addEvent({ code: 1032, severity: 'normal', description: `Image ${t.direction === 'upload' ? 'Upload' : 'Download'} with disk ${disk?.alias ?? t.diskId} succeeded.`, origin: 'oVirt' });
  }

  async cancel(t: SimTransfer, by: 'user' | 'system'): Promise<void> {
    t.phase = by === 'user' ? 'cancelled_user' : 'cancelled_system';
    await sleep(50); // visible for a moment, as the engine's polling interval shows it
    t.phase = 'finalizing_failure';
    await this.teardown(t, false);
    const disk = this.state.disk(t.diskId);
    if (disk && !t.backupId) {
      if (t.direction === 'upload') await this.deleteDisk(disk);
      else disk.status = 'ok';
    }
    t.phase = 'finished_failure';
    this.state.save();
  }

  pause(t: SimTransfer, by: 'user' | 'system'): void {
    t.phase = by === 'user' ? 'paused_user' : 'paused_system';
  }

  resume(t: SimTransfer): void {
    t.phase = 'resuming';
    setTimeout(() => {
      if (t.phase === 'resuming') t.phase = 'transferring';
    }, 100).unref();
  }

  /** Request bookkeeping for `active`, `transferred` and the inactivity timeout. */
  begin(t: SimTransfer): () => void {
    t.inflight++;
    t.lastActivity = Date.now();
    return () => {
      t.inflight--;
      t.lastActivity = Date.now();
    };
  }

  /** The pending fault for a GET on `t`, removed from the list. */
  takeFault(t: SimTransfer): ImageioFault['kind'] | undefined {
    const i = this.imageioFaults.findIndex((f) => f.transferId === undefined || f.transferId === t.id);
    if (i < 0) return undefined;
    return this.imageioFaults.splice(i, 1)[0]?.kind;
  }

  async closeAll(): Promise<void> {
    clearInterval(this.timer);
    for (const s of this.hung) s.destroy();
    this.hung.clear();
    await Promise.all([...this.all.values()].map((t) => this.teardown(t, false)));
  }

  /** A transfer's NBD backend coming up: `open` connects to it; a failure pauses the transfer. */
  private async bringUp(t: SimTransfer, disk: SimDiskRecord, open: () => Promise<NbdClient>): Promise<void> {
    try {
      t.nbd = await open();
      t.size = t.nbd.size;
      await sleep(this.initDelayMs);
      if (t.phase === 'initializing') {
        t.phase = 'transferring';
        t.lastActivity = Date.now();
      }
    } catch (err) {
      await this.teardown(t, false);
      t.phase = 'paused_system'; // the SDK treats this as "session failed": cancel
      this.state.addEvent({ code: 1033, severity: 'error', description: `Image transfer of disk ${disk.alias} failed to start: ${(err as Error).message}`, origin: 'oVirt' });
    }
  }

  /** A disk transfer: qemu-nbd on the disk's file, as imageio's own NBD backend. */
  private async openDisk(t: SimTransfer, disk: SimDiskRecord): Promise<NbdClient> {
    const sock = path.join(this.runDir, `nbd-${t.id.slice(0, 8)}.sock`);
    await fs.rm(sock, { force: true });
    const proc = spawn(
      'qemu-nbd',
      ['--socket', sock, '--format', qemuFormat(disk.format), '--export-name', 'sim', '--persistent', '--shared', '8', '--discard', 'unmap', '--cache', 'writeback', '--aio', 'threads', this.state.abs(disk.file)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    this.backends.set(t.id, { proc, sock });
    // --persistent: the readiness probe's connection does not end it
    await waitForSockets([sock], () => (proc.exitCode !== null ? `qemu-nbd: ${stderr.trim()}` : undefined), 10_000);
    return NbdClient.connectUnix(sock, { exportName: 'sim', metaContexts: ['base:allocation'] });
  }

  /** A backup download: imageio's NBD backend on the backup's export (QEMU's NBD server or qemu-nbd). */
  private openBackup(src: BackupSource): Promise<NbdClient> {
    return NbdClient.connectUnix(src.socket, { exportName: src.exportName, metaContexts: ['base:allocation', ...(src.dirtyContext ? [src.dirtyContext] : [])] });
  }

  private async teardown(t: SimTransfer, flush: boolean): Promise<void> {
    const nbd = t.nbd;
    delete t.nbd;
    if (nbd && !nbd.closed) {
      if (flush && t.direction === 'upload') await nbd.flush().catch(() => undefined);
      await nbd.close().catch(() => nbd.destroy());
    }
    const b = this.backends.get(t.id);
    this.backends.delete(t.id);
    if (b && b.proc.exitCode === null && b.proc.signalCode === null) {
      const gone = new Promise<void>((r) => b.proc.once('exit', () => r()));
      b.proc.kill('SIGTERM');
      const force = setTimeout(() => b.proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(force);
    }
    if (b) await fs.rm(b.sock, { force: true });
  }

  private checkInactivity(): void {
    const now = Date.now();
    for (const t of this.all.values()) {
      if (t.phase !== 'transferring' || t.inflight > 0 || t.inactivityTimeout <= 0) continue;
      if (now - t.lastActivity < t.inactivityTimeout * 1000) continue;
      const policy = t.timeoutPolicy === 'legacy' ? (t.direction === 'download' ? 'cancel' : 'pause') : t.timeoutPolicy;
      if (policy === 'pause') this.pause(t, 'system');
      else void this.cancel(t, 'system');
      this.state.addEvent({ code: 1034, severity: 'warning', description: `Transfer was stopped by system. Reason: failure in transfer image ticket inactivity (${t.inactivityTimeout} seconds).`, origin: 'oVirt' });
    }
  }
}
