import { randomBytes } from 'crypto';
import { AppError, describeError } from '../errors';
import { MAX_LOCK_DAYS } from '../config';
import type { NbdClient } from '../nbd';
import { BlockApi, type BlockDevice, type BitmapSource } from '../qmp';
import { newPointId, type DiskIndex, type DiskMeta, type ManifestDiskInput, type PointMeta, type PointWriter, type Repository } from '../repository';
import { bitmapRun, dropStale, rollbackActions, transactionActions, type BitmapRun } from './bitmaps';
import { planDisk, type DiskPlan } from './chainCheck';
import { freezeGuest } from './consistency';
import { copyDisk } from './diskCopy';
import { commonFailure, lockedUntil } from './failure';
import { FleeceSet } from './fleece';
import { recoverInterruptedRun } from './recovery';
import type { BackupProgress, BackupRequest, BackupResult } from './types';

interface DiskRun {
  device: BlockDevice;
  plan: DiskPlan;
  bitmaps: BitmapRun;
  base: DiskIndex | undefined;
  bytesRead: number;
}

/**
 * One backup of one VM (pull mode, reference/qemu-bitmaps.md §4A). One QMP transaction covers
 * every disk: the bitmap half (bitmaps.ts) and a fleecing job per disk that freezes its content.
 * The frozen views are read over NBD into the repository; the point becomes visible only when
 * its manifest is committed. If anything fails after the transaction, the frozen dirty bits go
 * back into the chain bitmap, so the next incremental still sees every write.
 */
export async function runBackup(req: BackupRequest): Promise<BackupResult> {
  checkLockDays(req.lockDays);
  const api = new BlockApi(req.qmp);
  const repo = req.repository;
  const createdAt = new Date();
  const pointId = newPointId(createdAt);
  const parent = await repo.latestPoint(req.vm.key);
  // one date for the packs' retention at upload and the manifest's at commit (FORMAT.md §24)
  const lockDate = lockedUntil(req.lockDays);
  const writer = await repo.beginPoint({ vm: req.vm, pointId, createdAt, parentPointId: parent?.pointId ?? null, lockedUntil: lockDate });
  const runTag = randomBytes(4).toString('hex');
  const warnings: string[] = [];
  let scratchDir: string | undefined;
  let fleece: FleeceSet | undefined;
  let disks: DiskRun[] = [];
  let transactionDone = false;
  let committed = false;
  let failure: AppError | undefined;
  let consistency: { consistency: 'filesystem' | 'crash'; reason: string } = { consistency: 'crash', reason: 'not frozen' };
  let thawProblem: string | undefined;
  const progress: BackupProgress = { phase: 'preparing', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 };
  const report = (patch: Partial<BackupProgress>): void => {
    Object.assign(progress, patch);
    req.onProgress?.({ ...progress });
  };
  try {
    warnings.push(...(await recoverInterruptedRun(api, req.host)));
    const devices = selectDevices(await api.listDevices(), req.devices, req.vm.name);
    disks = await Promise.all(devices.map((device) => planRun(req, repo, device, parent, pointId)));
    report({ disksTotal: disks.length });

    scratchDir = await req.host.makeScratchDir(req.scratchDir, `olvm-${runTag}-`);
    fleece = new FleeceSet(api, req.host, runTag, scratchDir);
    await fleece.prepare(
      disks.map((d) => ({ device: d.device.deviceId, nodeName: d.device.nodeName, virtualSize: d.device.virtualSize })),
      req.signal,
    );
    throwIfAborted(req.signal);

    fleece.watchJobs();
    const guest = await freezeGuest({
      mode: req.consistency ?? 'auto',
      openAgent: req.guestAgent,
      pingTimeoutMs: req.guestAgentTimeouts?.pingMs,
      freezeTimeoutMs: req.guestAgentTimeouts?.freezeMs,
      thawTimeoutMs: req.guestAgentTimeouts?.thawMs,
      signal: req.signal,
    });
    consistency = { consistency: guest.consistency, reason: guest.reason };
    try {
      throwIfAborted(req.signal);
      await api.transaction([...disks.flatMap((d) => transactionActions(d.bitmaps)), ...fleece.jobActions()]);
      transactionDone = true;
    } finally {
      // right after the transaction, whatever it did: the guest is never left frozen
      thawProblem = await guest.release();
      if (thawProblem) warnings.push(thawProblem);
    }
    report({ phase: 'frozen' });
    await req.onFrozen?.();

    const exportBitmaps = new Map<string, BitmapSource[]>();
    for (const d of disks) {
      if (d.bitmaps.frozen) exportBitmaps.set(d.device.deviceId, [{ node: d.bitmaps.node, name: d.bitmaps.frozen }]);
    }
    await fleece.export(exportBitmaps);
    report({ phase: 'copying' });
    for (const d of disks) {
      report({ disk: d.device.deviceId });
      d.bytesRead = await copyOne(req, fleece, d, writer, progress, report);
      fleece.checkJobs();
      report({ disksDone: progress.disksDone + 1 });
    }

    report({ phase: 'committing', disk: null });
    // The views were verified intact after each disk; what teardown cannot undo only warns.
    warnings.push(...(await fleece.teardown()).map(describeError));
    fleece = undefined;
    const manifest = await writer.commit({
      disks: disks.map((d) => manifestDisk(d, req.diskMeta?.[d.device.deviceId])),
      consistency: consistency.consistency,
      vmDefinition: req.vmDefinition ?? null,
      meta: { ...req.meta, tool: 'olvm-backup', method: 'qmp', consistencyReason: consistency.reason } satisfies PointMeta,
      lockedUntil: lockDate,
    });
    committed = true;
    warnings.push(...(await dropStale(api, disks.map((d) => ({ device: d.device.deviceId, bitmaps: d.bitmaps })))));
    report({ phase: 'done' });
    return { manifest, warnings };
  } catch (err) {
    failure = wrapFailure(err, req);
    throw failure;
  } finally {
    if (!committed) {
      const problems: Error[] = [];
      if (fleece) problems.push(...(await fleece.teardown()));
      if (transactionDone) problems.push(...(await rollback(api, disks)));
      await writer.abort().catch((e: unknown) => problems.push(e as Error));
      // Secondary to the failure being thrown, but the operator must see what is left behind.
      const list = failure?.details?.['cleanupProblems'];
      if (Array.isArray(list)) list.push(...(thawProblem ? [thawProblem] : []), ...problems.map(describeError));
    }
    if (scratchDir) await req.host.removeDir(scratchDir).catch(() => undefined);
  }
}

/** INVALID_ARGUMENT unless `days` is absent or a whole number of days a backup may lock for. */
export function checkLockDays(days: number | undefined): void {
  if (days === undefined) return;
  if (!Number.isInteger(days) || days < 0 || days > MAX_LOCK_DAYS) {
    throw new AppError('INVALID_ARGUMENT', `lock days must be a whole number from 0 to ${MAX_LOCK_DAYS} (got ${String(days)})`);
  }
}

function selectDevices(all: BlockDevice[], wanted: string[] | undefined, vmName: string): BlockDevice[] {
  const writable = all.filter((d) => !d.readOnly && d.deviceId !== '');
  if (wanted) {
    const missing = wanted.filter((w) => !writable.some((d) => d.deviceId === w));
    if (missing.length > 0) throw new AppError('INVALID_ARGUMENT', `vm ${vmName} has no writable disk ${missing.join(', ')}`);
    return writable.filter((d) => wanted.includes(d.deviceId));
  }
  if (writable.length === 0) throw new AppError('BACKUP_VM_NO_DISKS', `vm ${vmName} has no writable disk to back up`);
  return writable;
}

async function planRun(
  req: BackupRequest,
  repo: Repository,
  device: BlockDevice,
  parent: Awaited<ReturnType<Repository['latestPoint']>>,
  pointId: string,
): Promise<DiskRun> {
  const parentDamage = parent ? await repo.damageOf(parent.pointId) : null;
  let plan = planDisk(device, parent, { forceFull: req.forceFull === true, parentDamage });
  let base: DiskIndex | undefined;
  if (plan.mode === 'incremental' && parent) {
    try {
      base = await repo.readIndex(parent.pointId, device.deviceId);
    } catch {
      // a damaged parent index cannot anchor an incremental; a full repairs the chain
      plan = { mode: 'full', reason: 'parent-missing', previous: plan.previous };
    }
  }
  const persistent = device.canPersistBitmaps && req.transientBitmaps !== true;
  return { device, plan, bitmaps: bitmapRun(device, plan, pointId, persistent), base, bytesRead: 0 };
}

async function copyOne(
  req: BackupRequest,
  fleece: FleeceSet,
  d: DiskRun,
  writer: PointWriter,
  progress: BackupProgress,
  report: (p: Partial<BackupProgress>) => void,
): Promise<number> {
  const dw = writer.beginDisk({ device: d.device.deviceId, virtualSize: d.device.virtualSize, ...(d.base ? { base: d.base } : {}) });
  const dirtyContext = d.bitmaps.frozen ? `qemu:dirty-bitmap:${d.bitmaps.frozen}` : undefined;
  const connect = (): Promise<NbdClient> =>
    req.host.connectNbd(fleece.socketPath, {
      exportName: d.device.deviceId,
      metaContexts: dirtyContext ? ['base:allocation', dirtyContext] : ['base:allocation'],
      ...(req.signal ? { signal: req.signal } : {}),
    });
  const nbd = await connect();
  const extraReaders: NbdClient[] = [];
  try {
    for (let i = 1; i < req.host.nbdConnections; i++) extraReaders.push(await connect());
    const r = await copyDisk({
      source: nbd,
      extraReaders,
      writer: dw,
      chunkSize: req.repository.chunkSize,
      dirtyContext,
      ...(req.signal ? { signal: req.signal } : {}),
      onPlanned: (n) => report({ bytesTotal: progress.bytesTotal + n }),
      onBytes: (n) => report({ bytesDone: progress.bytesDone + n }),
    });
    await dw.finish();
    return r.bytesRead;
  } finally {
    for (const c of [nbd, ...extraReaders]) {
      if (c.closed) c.destroy();
      else await c.close({ timeoutMs: 10_000 }).catch(() => c.destroy());
    }
  }
}

function manifestDisk(d: DiskRun, meta: DiskMeta | undefined): ManifestDiskInput {
  return {
    ...(meta ? { meta } : {}),
    device: d.device.deviceId,
    node: d.device.nodeName,
    format: d.device.format,
    mode: d.plan.mode,
    reason: d.plan.reason,
    bitmap: d.bitmaps.chain,
    bitmapPersistent: d.bitmaps.persistent,
    bytesRead: d.bytesRead,
  };
}

async function rollback(api: BlockApi, disks: DiskRun[]): Promise<Error[]> {
  if (api.session.closed) return []; // QEMU is gone: its bitmaps are gone or inconsistent anyway
  const errors: Error[] = [];
  for (const d of disks) {
    try {
      await api.transaction(rollbackActions(d.bitmaps));
    } catch (err) {
      errors.push(new AppError('BACKUP_FAILED', `cleanup: restoring bitmaps of disk ${d.device.deviceId} failed`, { cause: err }));
    }
  }
  return errors;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AppError('BACKUP_ABORTED', 'backup aborted', { cause: signal.reason });
}

/** The error a failed backup throws; `details.cleanupProblems` lists what teardown could not undo. */
function wrapFailure(err: unknown, req: BackupRequest): AppError {
  return commonFailure(err, req.vm.name, req.signal) ?? new AppError('BACKUP_FAILED', `backup of vm ${req.vm.name} failed`, { cause: err, details: { cleanupProblems: [] } });
}
