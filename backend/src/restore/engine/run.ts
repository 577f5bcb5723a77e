import { AppError, describeError, isAppError } from '../../errors';
import type { EngineCallOptions } from '../../engine';
import type { DiskIndex, Manifest } from '../../repository';
import type { PlannedDisk, RestorePlan } from '../plan/types';
import { ProgressReporter } from './progress';
import { Rollback } from './rollback';
import { DEFAULT_LIMITS, PointStream } from './segments';
import { finalizeTransfer, openTransfer, type TransferTimeouts } from './transfer';
import { DEFAULT_TIMEOUTS, type ExecuteDeps, type RestoreResult, type RestoreTimeouts, type UploadStats } from './types';
import { UploadFailure, uploadSegments } from './upload';
import { readBackSha256 } from './verify';
import { attachToVm, createVmFromPlan } from './vm';

const MAX_IN_FLIGHT = 4;
/** Seconds of client silence after which the engine cancels our transfer (and an upload's
 *  disk) by itself, should this process die mid-restore. */
const INACTIVITY_SECONDS = 120;

/** A failure with what the restore was doing when it happened. */
export class StepError extends Error {
  constructor(
    readonly why: string,
    override readonly cause: unknown,
  ) {
    super(why);
  }
}

/** One execution of a plan: the steps, what they share, and the clean-up when one fails. */
export class RestoreRun {
  readonly warnings: string[] = [];
  readonly uploads: UploadStats[] = [];
  /** SHA-256 of each point disk (by device), computed while uploading it. */
  readonly sums = new Map<string, string>();
  readonly verified = new Set<string>();
  private readonly t: RestoreTimeouts;
  private readonly transferTimeouts: TransferTimeouts;
  private readonly call: EngineCallOptions;
  private readonly rollback = new Rollback();
  private readonly progress: ProgressReporter;
  private readonly total: number;
  private uploaded = 0;
  private hashed = 0;

  constructor(
    private readonly plan: RestorePlan,
    private readonly deps: ExecuteDeps,
    private readonly manifest: Manifest,
    private readonly indexes: Map<string, DiskIndex>,
    private readonly signal: AbortSignal,
  ) {
    this.t = { ...DEFAULT_TIMEOUTS, engineRequestMs: deps.engine.connection.timeoutMs, ...deps.timeouts };
    this.transferTimeouts = { engineRequestMs: this.t.engineRequestMs, imageioRequestMs: this.t.imageioRequestMs, transferPhaseMs: this.t.transferPhaseMs };
    this.call = { signal, timeoutMs: this.t.engineRequestMs };
    this.progress = new ProgressReporter(deps.onProgress, plan.disks.map((d) => d.name));
    this.total = plan.disks.reduce((n, d) => n + this.index(d).virtualSize, 0);
  }

  async execute(started: number): Promise<RestoreResult> {
    try {
      await this.createDisks();
      for (const d of this.plan.disks) await this.upload(d);
      if (this.deps.verify !== false) {
        for (const d of this.plan.disks) await this.verify(d);
        this.info(`verified ${this.verified.size} disk(s) against the point`);
      }
      const vm = await this.finish();
      this.progress.report('done', null, this.total, this.total);
      return {
        vmId: vm?.id ?? null,
        vmName: vm?.name ?? null,
        disks: this.plan.disks.map((d) => ({ device: d.device, diskId: d.diskId, name: d.name, sha256: this.sums.get(d.device) as string, verified: this.verified.has(d.device) })),
        durationMs: Date.now() - started,
        warnings: this.warnings,
        uploads: this.uploads,
      };
    } catch (err) {
      throw await this.failed(err);
    }
  }

  /** 1. The disks, with the ids the plan (and its OVF) fixed; then wait until all are `ok`. */
  private async createDisks(): Promise<void> {
    for (const d of this.plan.disks) {
      this.progress.report('creating-disks', d.name, 0, this.total);
      await at(`creating disk ${d.name} on ${d.storageDomainName}`, () => this.createDisk(d));
    }
    const ready = await Promise.allSettled(
      this.plan.disks.map((d) => at(`waiting for disk ${d.name} to be created`, () => this.deps.engine.waitForDiskStatus(d.diskId, ['ok'], { timeoutMs: this.t.diskReadyMs, signal: this.signal }))),
    );
    const notReady = ready.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (notReady) throw notReady.reason;
    this.info(`created ${this.plan.disks.length} disk(s): ${this.plan.disks.map((d) => d.name).join(', ')}`);
  }

  private async createDisk(d: PlannedDisk): Promise<void> {
    this.rollback.diskRequested(d.diskId, d.name);
    try {
      await this.deps.engine.addDisk(
        {
          id: d.diskId,
          ...(d.imageId ? { imageId: d.imageId } : {}),
          name: d.name,
          description: d.description,
          provisionedSize: d.provisionedSize,
          ...(d.initialSize !== null ? { initialSize: d.initialSize } : {}),
          format: d.format,
          sparse: d.sparse,
          backup: d.backup,
          storageDomainId: d.storageDomainId,
        },
        this.call,
      );
    } catch (err) {
      if (isAppError(err, 'ENGINE_HTTP_ERROR')) this.rollback.diskRefused(d.diskId);
      throw err;
    }
  }

  /** 2. One disk's data through an upload transfer, then finalize. */
  private async upload(d: PlannedDisk): Promise<void> {
    const index = this.index(d);
    this.progress.report('uploading', d.name, this.uploaded, this.total);
    const opened = await at(`starting the upload of disk ${d.name}`, () =>
      openTransfer(this.deps.engine, {
        diskId: d.diskId,
        diskName: d.name,
        direction: 'upload',
        useProxy: this.plan.useProxy,
        maxConnections: MAX_IN_FLIGHT,
        inactivityTimeoutSeconds: INACTIVITY_SECONDS,
        timeouts: this.transferTimeouts,
        signal: this.signal,
        onCreated: (tr) => this.rollback.transferStarted(tr.id, d.name),
        warn: (m) => this.warn(m),
      }),
    );
    const inFlight = Math.max(1, Math.min(this.maxInFlight(), opened.capabilities.maxWriters));
    const stream = new PointStream(this.deps.point, index, DEFAULT_LIMITS, this.signal);
    const t0 = Date.now();
    let counters;
    try {
      counters = await uploadSegments(opened.imageio, stream.segments(), {
        inFlight,
        timeoutMs: this.t.imageioRequestMs,
        signal: this.signal,
        position: () => stream.position,
        onBytes: (n) => {
          this.uploaded += n;
          this.progress.report('uploading', d.name, this.uploaded, this.total);
        },
      });
    } catch (err) {
      if (err instanceof UploadFailure) throw new StepError(`upload of disk ${d.name} failed at ${mib(err.offset)}`, err.cause);
      throw err;
    } finally {
      opened.imageio.close();
    }
    const seconds = (Date.now() - t0) / 1000;
    this.progress.report('finalizing', d.name, this.uploaded, this.total);
    await at(`finalizing the upload of disk ${d.name}`, async () => {
      const transfer = { id: opened.transfer.id, diskId: d.diskId, diskName: d.name, direction: 'upload' as const };
      await finalizeTransfer(this.deps.engine, transfer, { timeouts: this.transferTimeouts, signal: this.signal });
      this.rollback.transferEnded(opened.transfer.id);
      await this.deps.engine.waitForDiskStatus(d.diskId, ['ok'], { timeoutMs: this.t.diskReadyMs, signal: this.signal });
    });
    this.sums.set(d.device, await stream.sha256());
    this.uploads.push({ device: d.device, diskId: d.diskId, virtualSize: index.virtualSize, ...counters, seconds });
    this.info(
      `uploaded disk ${d.name} via the ${opened.via}: ${mib(counters.dataBytes)} of data in ${counters.dataRequests} requests, ` +
        `${mib(counters.zeroBytes)} zeroed in ${counters.zeroRequests}, ${seconds.toFixed(1)} s, ${inFlight} in flight`,
    );
  }

  /**
   * 3. Read back and compare. Runs before the VM exists: a download transfer is refused for a
   * disk plugged into a running VM, and a mismatch then has less to undo.
   */
  private async verify(d: PlannedDisk): Promise<void> {
    this.progress.report('verifying', d.name, this.hashed, this.total);
    const expected = this.sums.get(d.device) as string;
    const got = await at(`verification of disk ${d.name}`, () =>
      readBackSha256(this.deps.engine, {
        diskId: d.diskId,
        diskName: d.name,
        size: this.index(d).virtualSize,
        useProxy: this.plan.useProxy,
        inFlight: this.maxInFlight(),
        timeouts: this.transferTimeouts,
        signal: this.signal,
        onCreated: (tr) => this.rollback.transferStarted(tr.id, d.name),
        onEnded: (id) => this.rollback.transferEnded(id),
        onBytes: (n) => {
          this.hashed += n;
          this.progress.report('verifying', d.name, this.hashed, this.total);
        },
        warn: (m) => this.warn(m),
      }),
    );
    if (got !== expected) {
      const why = `the disk in the engine (sha256 ${got.slice(0, 16)}…) differs from the point (sha256 ${expected.slice(0, 16)}…)`;
      throw new StepError(`verification of disk ${d.name}`, new AppError('RESTORE_FAILED', why));
    }
    this.verified.add(d.device);
  }

  /** 4. The VM from the OVF, or the disks attached to the chosen VM, or nothing (floating). */
  private async finish(): Promise<{ id: string; name: string } | null> {
    const ctx = {
      engine: this.deps.engine,
      rollback: this.rollback,
      call: this.call,
      warn: (m: string) => this.warn(m),
      onDisk: (name: string) => this.progress.report('attaching', name, this.total, this.total),
    };
    const planned = this.plan.vm;
    if (planned) {
      this.progress.report('creating-vm', null, this.total, this.total);
      const description = planned.description.trim() || `Restored by olvm-backup from ${this.plan.sourceVm.name} at ${this.manifest.createdAt}`;
      const vm = await at(`creating vm ${planned.name} from the ovf`, () => createVmFromPlan(ctx, planned, this.plan.disks, description));
      this.info(`created vm ${vm.name} (${vm.id})`);
      return { id: vm.id, name: vm.name };
    }
    const target = this.plan.attachToVmId;
    if (target) {
      await at(`attaching the disks to vm ${target}`, () => attachToVm(ctx, target, this.plan.disks));
      this.info(`attached ${this.plan.disks.length} disk(s) to vm ${target}`);
    }
    return null;
  }

  /** 5. Undo, then the error that says what failed and what (if anything) is left. */
  private async failed(err: unknown): Promise<AppError> {
    const step = err instanceof StepError ? err : new StepError('restore', err);
    const why = `${step.why}: ${describeError(step.cause)}`;
    this.deps.log?.('error', `restore of point ${this.plan.pointId} failed: ${why}; cleaning up`);
    const left = await this.rollback.run(this.deps.engine, { timeoutMs: this.t.cleanupMs, engineRequestMs: this.t.engineRequestMs, log: (m) => this.info(m) });
    for (const l of left) this.deps.log?.('error', `clean-up: ${l}`);
    const verb = this.signal.aborted ? 'was aborted' : 'failed';
    const cleanup = left.length ? `; clean-up incomplete: ${left.join('; ')}` : '; everything it created in the engine was removed';
    return new AppError('RESTORE_FAILED', `restore of point ${this.plan.pointId} of ${this.plan.sourceVm.name} ${verb}: ${why}${cleanup}`, {
      cause: step.cause,
      details: { pointId: this.plan.pointId, step: step.why, aborted: this.signal.aborted, leftovers: left },
    });
  }

  private index(d: PlannedDisk): DiskIndex {
    return this.indexes.get(d.device) as DiskIndex;
  }

  private maxInFlight(): number {
    return Math.max(1, Math.min(MAX_IN_FLIGHT, this.deps.maxInFlight ?? MAX_IN_FLIGHT));
  }

  private warn(msg: string): void {
    this.warnings.push(msg);
    this.deps.log?.('warn', msg);
  }

  private info(msg: string): void {
    this.deps.log?.('info', msg);
  }
}

async function at<T>(why: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof StepError ? err : new StepError(why, err);
  }
}

function mib(bytes: number): string {
  const m = bytes / (1 << 20);
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`;
}
