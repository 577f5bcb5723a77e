/**
 * The engine method (reference §4-§6, §10): a backup of a VM through nothing but the engine's
 * backup API and imageio. The engine freezes the disks (and the guest, if it can), keeps the
 * checkpoints and serves each disk through an image transfer; the data goes through the same
 * copy, chunking and index code as the QMP method (copyDisk over a DiskSource). The point is
 * committed only after every transfer and the engine backup itself finished; on any failure the
 * transfers are ended, the engine backup finalized and the half point dropped.
 */
import { randomUUID } from 'crypto';
import { AppError, describeError, isAppError } from '../errors';
import type { EngineClient, ExcludedDisk, Vm, VmBackup, VmDisk } from '../engine';
import { newPointId, type DiskIndex, type DiskMeta, type Manifest, type ManifestDiskInput, type PointMeta, type PointWriter, type Repository } from '../repository';
import { copyDisk } from './diskCopy';
import { commonFailure, lockedUntil } from './failure';
import { chooseCheckpoint, engineDeviceName, engineDiskFormat, parentCheckpointId, planEngineDisk, type CheckpointChoice, type EngineDiskPlan } from './engineBackupPlan';
import { endTransfer, finalizeDownload, openDownload, type DownloadTimeouts } from './engineDownloads';
import { settle } from './engineSettle';
import type { BackupProgress, EngineBackupRef } from './types';
import { IMAGEIO_DIRTY_CONTEXT } from './imageioSource';
import type { ConsistencyMode } from './model';

export interface EngineBackupTimeouts extends DownloadTimeouts {
  /** From the request until the backup is `ready` (scratch disks, bitmaps, a snapshot). */
  readyMs: number;
  /** From finalize until `succeeded` (a hybrid backup removes its snapshot then). */
  finalizeMs: number;
}

export const DEFAULT_ENGINE_TIMEOUTS: EngineBackupTimeouts = {
  readyMs: 600_000,
  finalizeMs: 600_000,
  transferPhaseMs: 180_000,
  imageioRequestMs: 60_000,
  inactivityTimeoutSeconds: 120,
  // the longest pause between phase reads; the first are 50 ms and grow with the wait
  // (engine/poll.ts), so a small incremental's short phases are seen at once
  pollIntervalMs: 1000,
};

export interface EngineApiBackupRequest {
  engine: EngineClient;
  /** Read with all content (the OVF) and its disk attachments. */
  vm: Vm;
  /** The disks to back up: active, not described `backup=0`. */
  disks: VmDisk[];
  excluded: ExcludedDisk[];
  repository: Repository;
  forceFull?: boolean;
  lockDays?: number;
  consistency: ConsistencyMode;
  meta?: Omit<PointMeta, 'engine'>;
  signal?: AbortSignal;
  timeouts?: Partial<EngineBackupTimeouts>;
  report: (p: Partial<BackupProgress>) => void;
  onEngineBackup?: (ref: EngineBackupRef & { finished: boolean }) => void;
}

interface DiskRun {
  disk: VmDisk;
  device: string;
  plan: EngineDiskPlan;
  virtualSize: number;
  bytesRead: number;
}

export async function engineApiBackup(req: EngineApiBackupRequest): Promise<{ manifest: Manifest; warnings: string[] }> {
  const { engine, vm, repository: repo } = req;
  const t: EngineBackupTimeouts = { ...DEFAULT_ENGINE_TIMEOUTS, ...req.timeouts };
  const call = req.signal ? { signal: req.signal } : {};
  const warnings: string[] = [];
  const createdAt = new Date();
  const pointId = newPointId(createdAt);
  const parent = await repo.latestPoint(vm.id);
  const cpId = parentCheckpointId(parent, req.forceFull === true);
  const checkpoint = cpId ? await engine.getCheckpoint(vm.id, cpId, call) : undefined;
  let choice = chooseCheckpoint({ parent, forceFull: req.forceFull === true, checkpoint });
  const parentDamage = parent ? await repo.damageOf(parent.pointId) : null;
  // one date for the packs' retention at upload and the manifest's at commit (FORMAT.md §24)
  const lockDate = lockedUntil(req.lockDays);
  const writer = await repo.beginPoint({ vm: { key: vm.id, name: vm.name, id: vm.id }, pointId, createdAt, parentPointId: parent?.pointId ?? null, lockedUntil: lockDate });

  let ref: EngineBackupRef | undefined; // an engine backup that may exist and is not finalized
  const openTransfers = new Set<string>();
  let committed = false;
  let failure: AppError | undefined;
  try {
    const eventsFrom = await newestEventIndex(engine, call);
    let ready: VmBackup | undefined;
    for (let attempt = 1; !ready; attempt++) {
      ref = { vmId: vm.id, backupId: randomUUID() };
      req.onEngineBackup?.({ ...ref, finished: false }); // before the request: we may die during it
      try {
        await engine.startBackup(
          vm.id,
          {
            id: ref.backupId,
            diskIds: req.disks.map((d) => d.disk.id),
            ...(choice.fromCheckpointId ? { fromCheckpointId: choice.fromCheckpointId } : {}),
            // who left it, for an admin reading the engine's list (and a recovery without the id)
            description: `olvm-backup point ${pointId}${req.meta?.jobId ? ` job ${req.meta.jobId}` : ''}`,
            requireConsistency: req.consistency === 'filesystem',
            // a hybrid backup (cluster >= 4.7) ignores require_consistency: StartVmBackup keeps it
            legacy: req.consistency === 'filesystem',
          },
          call,
        );
        req.report({ phase: 'preparing' });
        ready = (await engine.waitForBackupPhase(vm.id, ref.backupId, ['ready'], { timeoutMs: t.readyMs, intervalMs: t.pollIntervalMs, ...call })) ?? undefined;
      } catch (err) {
        if (attempt > 1 || !choice.fromCheckpointId || !refusedCheckpoint(err)) throw err;
        // the engine cannot go on from the checkpoint (reference §4.5): a full instead
        // a refused backup not known to be over keeps `ref` (and the job's record of it) for
        // the cleanup below: a second backup would meet its lock and take its place in the record
        if ((await finish(ref)).length > 0) throw err;
        warnings.push(`the engine refused to back up from checkpoint ${choice.fromCheckpointId} (${describeError(err)}); taking a full backup`);
        choice = { fromCheckpointId: undefined, reason: 'checkpoint-missing' };
      }
    }
    const backupId = ready.id;
    if (req.consistency === 'filesystem' && ready.snapshotId) {
      // an engine that ignored `legacy`: its snapshot may have been taken without the freeze
      throw new AppError('BACKUP_NOT_CONSISTENT', `backup of vm ${vm.name}: filesystem consistency was required and the engine took a snapshot-based (hybrid) backup, which does not enforce the guest freeze`);
    }
    req.report({ phase: 'frozen' });
    const consistency = await consistencyOf(engine, req, eventsFrom, call);
    const modes = new Map((await engine.listBackupDisks(vm.id, backupId, call)).map((d) => [d.id, d.backupMode]));

    req.report({ phase: 'copying', disksTotal: req.disks.length });
    const runs: DiskRun[] = [];
    const counters = { bytesTotal: 0, bytesDone: 0 };
    for (const disk of req.disks) {
      runs.push(await copyOne(req, t, backupId, disk, { parent, choice, parentDamage, mode: modes.get(disk.disk.id) }, writer, openTransfers, counters));
      req.report({ disksDone: runs.length });
    }

    req.report({ phase: 'committing', disk: null });
    await engine.finalizeBackup(vm.id, backupId, call);
    const end = await engine.waitForBackupPhase(vm.id, backupId, ['succeeded'], { timeoutMs: t.finalizeMs, intervalMs: t.pollIntervalMs, ...call });
    req.onEngineBackup?.({ vmId: vm.id, backupId, finished: true });
    ref = undefined;
    const checkpointId = ready.toCheckpointId ?? end?.toCheckpointId;
    const manifest = await writer.commit({
      disks: runs.map((r) => manifestDisk(r, checkpointId)),
      consistency: consistency.consistency,
      vmDefinition: vm.configuration ? { kind: 'ovf', content: vm.configuration.data } : null,
      meta: {
        ...req.meta,
        tool: 'olvm-backup',
        method: 'engine',
        consistencyReason: consistency.reason,
        engine: {
          vmId: vm.id,
          clusterId: vm.clusterId ?? null,
          hostId: ready.hostId ?? vm.hostId ?? null,
          startedPaused: false,
          excluded: req.excluded.map((e) => ({ diskId: e.disk.disk.id, alias: e.disk.disk.alias, reason: e.reason })),
          unmappedDevices: [],
          backupId,
          ...(checkpointId ? { checkpointId } : {}),
        },
      } satisfies PointMeta,
      lockedUntil: lockDate,
    });
    committed = true;
    req.report({ phase: 'done' });
    return { manifest, warnings };
  } catch (err) {
    failure = wrapFailure(err, req);
    throw failure;
  } finally {
    if (!committed) {
      const problems: string[] = [];
      // not the backup's signal: an aborted backup must still leave the engine clean
      for (const id of openTransfers) {
        const p = await endTransfer(engine, id, t.transferPhaseMs);
        if (p) problems.push(p);
      }
      if (ref) problems.push(...(await finish(ref)));
      await writer.abort().catch((e: unknown) => problems.push(describeError(e)));
      const list = failure?.details?.['cleanupProblems'];
      if (Array.isArray(list)) list.push(...problems);
    }
  }

  /** Finalizes the engine backup `r` (whatever phase it reached); problems, not throws. */
  async function finish(r: EngineBackupRef): Promise<string[]> {
    try {
      await settle(engine, r, { phaseTimeoutMs: t.finalizeMs });
      req.onEngineBackup?.({ ...r, finished: true });
      return [];
    } catch (err) {
      return [`engine backup ${r.backupId} may still hold the vm's disks: ${describeError(err)}`];
    }
  }
}

/** One disk: its download transfer, the copy into the repository, the transfer finalized. */
async function copyOne(
  req: EngineApiBackupRequest,
  t: EngineBackupTimeouts,
  backupId: string,
  disk: VmDisk,
  ctx: { parent: Manifest | undefined; choice: CheckpointChoice; parentDamage: Awaited<ReturnType<Repository['damageOf']>>; mode: 'full' | 'incremental' | undefined },
  writer: PointWriter,
  openTransfers: Set<string>,
  counters: { bytesTotal: number; bytesDone: number },
): Promise<DiskRun> {
  const name = disk.disk.alias;
  const device = engineDeviceName(disk.disk.id);
  req.report({ disk: name });
  const dl = await openDownload(req.engine, {
    backupId,
    diskId: disk.disk.id,
    diskName: name,
    size: disk.disk.provisionedSize,
    timeouts: t,
    ...(req.signal ? { signal: req.signal } : {}),
    onCreated: (x) => openTransfers.add(x.id),
  });
  let plan: EngineDiskPlan;
  let bytesRead: number;
  try {
    plan = planEngineDisk({
      device,
      diskBackup: disk.disk.backup,
      virtualSize: dl.source.size,
      parent: ctx.parent,
      checkpoint: ctx.choice,
      backupMode: ctx.mode,
      forceFull: req.forceFull === true,
      parentDamage: ctx.parentDamage,
    });
    let base: DiskIndex | undefined;
    if (plan.mode === 'incremental' && ctx.parent) {
      try {
        base = await req.repository.readIndex(ctx.parent.pointId, device);
      } catch {
        // a damaged parent index cannot anchor an incremental; a full repairs the chain
        plan = { mode: 'full', reason: 'parent-missing', previous: plan.previous };
      }
    }
    const dw = writer.beginDisk({ device, virtualSize: dl.source.size, ...(base ? { base } : {}) });
    const r = await copyDisk({
      source: dl.source,
      writer: dw,
      chunkSize: req.repository.chunkSize,
      dirtyContext: plan.mode === 'incremental' ? IMAGEIO_DIRTY_CONTEXT : undefined,
      // twice the connections: a reader waiting on the repository holds no connection, so the
      // ticket's max_readers connections stay busy (the transport queues the rest)
      concurrency: dl.readers * 2,
      ...(req.signal ? { signal: req.signal } : {}),
      onPlanned: (n) => req.report({ bytesTotal: (counters.bytesTotal += n) }),
      onBytes: (n) => req.report({ bytesDone: (counters.bytesDone += n) }),
    });
    await dw.finish();
    bytesRead = r.bytesRead;
  } finally {
    dl.source.close();
  }
  await finalizeDownload(req.engine, { id: dl.transfer.id, diskName: name }, { timeoutMs: t.transferPhaseMs, intervalMs: t.pollIntervalMs, ...(req.signal ? { signal: req.signal } : {}) });
  openTransfers.delete(dl.transfer.id);
  return { disk, device, plan, virtualSize: dl.source.size, bytesRead };
}

function manifestDisk(r: DiskRun, checkpointId: string | undefined): ManifestDiskInput {
  const meta: DiskMeta = { diskId: r.disk.disk.id, alias: r.disk.disk.alias, description: r.disk.disk.description };
  const inCheckpoint = r.disk.disk.backup === 'incremental' && checkpointId !== undefined;
  return {
    meta,
    device: r.device,
    node: '',
    format: engineDiskFormat(r.disk.disk.format),
    mode: r.plan.mode,
    reason: r.plan.reason,
    bitmap: inCheckpoint ? checkpointId : '',
    bitmapPersistent: true,
    bytesRead: r.bytesRead,
  };
}

/** The engine refused to start from the checkpoint, or failed the backup saying a full is needed. */
function refusedCheckpoint(err: unknown): boolean {
  if (isAppError(err, 'ENGINE_HTTP_ERROR')) {
    const status = err.details?.['status'];
    return (status === 400 || status === 409) && /checkpoint/i.test(err.message);
  }
  return isAppError(err, 'ENGINE_BACKUP_FAILED') && /checkpoint|full (vm )?backup/i.test(err.message);
}

async function newestEventIndex(engine: EngineClient, call: { signal?: AbortSignal }): Promise<number | undefined> {
  const [ev] = await engine.listEvents({ max: 1, ...call }).catch(() => []);
  return ev?.index;
}

/**
 * What the point is: the engine freezes the guest through its agent whenever it can and says
 * so only when it fails; `require_consistency` makes that failure fail the backup. So only
 * `filesystem` is known filesystem-consistent; the others record what is known.
 */
async function consistencyOf(
  engine: EngineClient,
  req: EngineApiBackupRequest,
  eventsFrom: number | undefined,
  call: { signal?: AbortSignal },
): Promise<{ consistency: 'filesystem' | 'crash'; reason: string }> {
  if (req.vm.status === 'down') return { consistency: 'crash', reason: 'vm was down: a cold backup of the disks as its last shutdown left them' };
  if (req.consistency === 'filesystem') return { consistency: 'filesystem', reason: 'the engine froze the guest filesystems (require_consistency)' };
  const events = eventsFrom === undefined ? [] : await engine.listEvents({ from: eventsFrom, max: 100, ...call }).catch(() => []);
  const freeze = events.find((e) => e.vmId === req.vm.id && e.origin !== 'olvm-backup' && /freez/i.test(e.description));
  const failed = freeze && (freeze.severity === 'warning' || freeze.severity === 'error' || /fail/i.test(freeze.description));
  if (req.consistency === 'crash') {
    const what = failed ? `it reported: ${freeze.description}` : 'it froze the guest if its agent answered';
    return { consistency: 'crash', reason: `crash-consistent by request, but the engine has no switch to skip the guest freeze: ${what}` };
  }
  if (failed) return { consistency: 'crash', reason: `the engine could not freeze the guest: ${freeze.description}` };
  return { consistency: 'crash', reason: 'engine froze the guest if its agent answered' };
}

/** The error a failed backup throws; `details.cleanupProblems` lists what cleanup could not undo. */
function wrapFailure(err: unknown, req: EngineApiBackupRequest): AppError {
  const name = req.vm.name;
  const common = commonFailure(err, name, req.signal);
  if (common) return common;
  const details = { cleanupProblems: [] as string[] };
  if (isAppError(err, 'ENGINE_BACKUP_FAILED') && req.consistency === 'filesystem' && /freez|consisten/i.test(err.message)) {
    return new AppError('BACKUP_NOT_CONSISTENT', `backup of vm ${name}: filesystem consistency was required and the engine could not freeze the guest: ${err.message}`, { cause: err, details });
  }
  const code = err instanceof AppError && (err.code.startsWith('ENGINE_') || err.code.startsWith('IMAGEIO_')) ? err.code : 'BACKUP_FAILED';
  return new AppError(code, `backup of vm ${name} failed: ${describeError(err)}`, { cause: err, details });
}
