import * as path from 'path';
import { AppError } from '../errors';
import type { HostLink } from '../hosts';
import { BlockJob, type BlockAction, type BlockApi, type BitmapSource } from '../qmp';
import { RUN_PREFIXES, runIds } from './names';

export interface FleeceDisk {
  device: string;
  sourceNode: string;
  virtualSize: number;
  fleeceNode: string;
  jobId: string;
  exportId: string;
  scratchFile: string;
  nodeAdded: boolean;
  job: BlockJob | undefined;
  exported: boolean;
}

const CLEANUP_TIMEOUT_MS = 30_000;

/**
 * The point-in-time views QEMU serves for one backup run (reference/qemu-bitmaps.md §4A): per
 * disk a qcow2 scratch overlay backed by the live node, a `sync: none` backup job that pushes
 * old data into it before the guest overwrites it, and an NBD export of the overlay. Everything
 * created is tracked so teardown removes exactly that, in reverse order, whatever failed.
 */
export class FleeceSet {
  readonly disks: FleeceDisk[] = [];
  private serverStarted = false;
  readonly socketPath: string;

  constructor(
    private readonly api: BlockApi,
    private readonly host: HostLink,
    readonly runTag: string,
    readonly scratchDir: string,
  ) {
    this.socketPath = path.join(scratchDir, 'nbd.sock');
  }

  /** Scratch images and overlay nodes; done before the transaction, which they do not affect. */
  async prepare(devices: Array<{ device: string; nodeName: string; virtualSize: number }>, signal?: AbortSignal): Promise<void> {
    for (const [i, d] of devices.entries()) {
      const ids = runIds(this.runTag, i);
      const disk: FleeceDisk = {
        device: d.device,
        sourceNode: d.nodeName,
        virtualSize: d.virtualSize,
        ...ids,
        scratchFile: path.join(this.scratchDir, `fleece-${i}.qcow2`),
        nodeAdded: false,
        job: undefined,
        exported: false,
      };
      this.disks.push(disk);
      await this.host.createScratchImage(disk.scratchFile, d.virtualSize, signal);
      await this.api.addOverlay({ nodeName: disk.fleeceNode, filename: disk.scratchFile, backingNode: d.nodeName });
      disk.nodeAdded = true;
    }
  }

  /** The fleecing job actions, one per disk, for the caller's transaction. */
  jobActions(): BlockAction[] {
    return this.disks.map((d) => ({ kind: 'fleeceBackup', jobId: d.jobId, device: d.sourceNode, target: d.fleeceNode }));
  }

  /** Subscribes to the jobs' events; must run before the transaction is sent. */
  watchJobs(): void {
    for (const d of this.disks) d.job = BlockJob.watch(this.api.session, d.jobId);
  }

  /** A fleecing job that failed (e.g. the scratch disk filled up) makes its view unreliable. */
  checkJobs(): void {
    for (const d of this.disks) {
      const r = d.job?.result;
      if (r && r.kind !== 'completed') {
        throw new AppError('BACKUP_FAILED', `fleecing job for disk ${d.device} ended early (${r.kind === 'failed' ? r.error : 'cancelled'}); the point-in-time view is lost`);
      }
    }
  }

  async export(bitmaps: Map<string, BitmapSource[]>): Promise<void> {
    this.serverStarted = await this.api.nbdServerStart(this.socketPath);
    if (!this.serverStarted) {
      // QEMU has one NBD server and no query for its address. With no export of anyone else
      // on it, it is a leftover (ours, from a run that died) and is replaced; otherwise another
      // tool is serving the VM's disks right now and must not be disturbed.
      const foreign = (await this.api.exportIds()).filter((id) => !id.startsWith(RUN_PREFIXES.export));
      if (foreign.length > 0) {
        throw new AppError('BACKUP_FAILED', `qemu's nbd server is in use by another tool (exports: ${foreign.join(', ')}); try again when it is done`);
      }
      await this.api.nbdServerStop();
      this.serverStarted = await this.api.nbdServerStart(this.socketPath);
      if (!this.serverStarted) throw new AppError('BACKUP_FAILED', `qemu's nbd server could not be restarted`);
    }
    for (const d of this.disks) {
      await this.api.exportAdd({ id: d.exportId, nodeName: d.fleeceNode, exportName: d.device, bitmaps: bitmaps.get(d.device) ?? [] });
      d.exported = true;
    }
  }

  /** Removes exports, jobs, nodes, NBD server and scratch files; returns what could not be undone. */
  async teardown(): Promise<Error[]> {
    const errors: Error[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(new AppError('BACKUP_FAILED', `cleanup: ${what} failed`, { cause: err }));
      }
    };
    const qemuAlive = !this.api.session.closed;
    for (const d of [...this.disks].reverse()) {
      if (qemuAlive && d.exported) await attempt(`removing export ${d.exportId}`, () => this.api.exportDel(d.exportId, { hard: true }));
      if (qemuAlive && d.job) {
        const job = d.job;
        await attempt(`cancelling job ${d.jobId}`, () => job.cancel({ timeoutMs: CLEANUP_TIMEOUT_MS }));
      }
      d.job?.dispose();
      if (qemuAlive && d.nodeAdded) await attempt(`removing node ${d.fleeceNode}`, () => this.api.deleteNode(d.fleeceNode));
      await attempt(`removing ${d.scratchFile}`, () => this.host.removeFile(d.scratchFile));
    }
    if (qemuAlive && this.serverStarted) await attempt('stopping the nbd server', () => this.api.nbdServerStop());
    return errors;
  }
}
