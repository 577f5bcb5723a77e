import { AppError, describeError } from '../errors';
import { mapDisks, type EngineClient, type ExcludedDisk, type UnmappedDevice, type Vm } from '../engine';
import { HostDirectory, type VmHostLink } from '../hosts';
import { BlockApi, type BlockDevice, type QmpSession } from '../qmp';
import { diskLabel, readPointMeta, type DiskMeta, type Manifest, type PointMeta, type Repository } from '../repository';
import type { PointMethod } from '../repository/model';
import { checkLockDays, runBackup } from './runBackup';
import type { EngineBackupTimeouts } from './engineApiBackup';
import { autoMethod, RUNNING_VM_STATUSES, type BackupMethod, type ConsistencyMode } from './model';
import type { BackupProgress, EngineBackupRef } from './types';

export type { EngineBackupRef } from './types';

export interface EngineVmBackupRequest {
  engine: EngineClient;
  vmId: string;
  repository: Repository;
  /** One link for every VM, or the directory that picks the link for the VM's current host
   *  (the engine's `vm.host` → `host.address`). */
  host: VmHostLink | HostDirectory;
  /** Scratch directory on the VM's host, unless the host's directory entry names one. */
  scratchDir: string;
  forceFull?: boolean;
  transientBitmaps?: boolean;
  /** Days the new point is locked, from its commit (BackupRequest.lockDays). */
  lockDays?: number;
  /** `auto` (default, default `auto`): which method reads the VM (model.ts BackupMethod). */
  method?: BackupMethod;
  /** `auto` (default): freeze the guest filesystems when its agent answers, else crash-
   *  consistent with the reason; `filesystem`: fail when they cannot be frozen (engine method:
   *  `require_consistency=true`); `crash`: never (a policy's opt-out). */
  consistency?: ConsistencyMode;
  /** Guest agent timeouts (ms), as in `BackupRequest`. */
  guestAgentTimeouts?: { pingMs?: number; freezeMs?: number; thawMs?: number };
  /** How long a VM that is down may take to come up paused; default 120 s. */
  startTimeoutMs?: number;
  /** Stored in the point's manifest `meta` beside the engine facts (the service's job id...). */
  meta?: Omit<PointMeta, 'engine'>;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
  /** The VM was down and is being started paused for the backup: a caller that may die before
   *  the backup ends records this, so that whoever picks up after it stops the VM again. */
  onVmStarting?: () => void;
  /** Engine method: called with the backup's id before it is requested from the engine (so a
   *  caller that dies can have it finalized by settleEngineBackup), and with `finished: true`
   *  once the engine backup is finalized or known gone. */
  onEngineBackup?: (ref: EngineBackupRef & { finished: boolean }) => void;
  /** Engine method: waits and timeouts (engineApiBackup.ts DEFAULT_ENGINE_TIMEOUTS). */
  engineTimeouts?: Partial<EngineBackupTimeouts>;
}

export interface EngineVmBackupResult {
  manifest: Manifest;
  vm: Vm;
  excluded: Array<ExcludedDisk<BlockDevice>>;
  unmapped: Array<UnmappedDevice<BlockDevice>>;
  /** The VM was down: the backup started it paused and stopped it again (qmp method only). */
  startedPaused: boolean;
  /** The method that made the point (`auto` resolved). */
  method: PointMethod;
  durationMs: number;
  warnings: string[];
}

/**
 * A backup of a VM known to the engine, by its id: the engine says what the VM is (name, disks
 * with their aliases, the OVF every point stores) and whether it runs. `method` picks how the
 * disks are read (resolveMethod): the QMP method starts a VM that is down paused for the backup
 * and stops it again whatever happens; the engine method backs it up cold. Disks described
 * `backup=0` are left out. The outcome goes to the engine's event log.
 */
export async function engineVmBackup(req: EngineVmBackupRequest): Promise<EngineVmBackupResult> {
  checkLockDays(req.lockDays); // before a VM that is down is started for nothing
  const started = Date.now();
  const call = req.signal ? { signal: req.signal } : {};
  const vm = await req.engine.getVm(req.vmId, { allContent: true, withDisks: true, ...call }).catch((err: unknown) => {
    throw new AppError('BACKUP_FAILED', `cannot read vm ${req.vmId} from the engine`, { cause: err });
  });
  const state: { startedPaused: boolean; qmp?: QmpSession } = { startedPaused: false };
  let result: EngineVmBackupResult | undefined;
  let failure: AppError | undefined;
  const warnings: string[] = [];
  // The engine-side phases keep the copy's counters, so a progress bar never jumps back.
  const last: BackupProgress = { phase: 'preparing', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 };
  const report = (p: Partial<BackupProgress>): void => {
    Object.assign(last, p);
    req.onProgress?.({ ...last });
  };
  try {
    const method = await resolveMethod(req, vm);
    result = method === 'engine' ? await viaEngine(req, vm, report) : await viaQmp(req, vm, state, report);
    warnings.push(...result.warnings);
    result.warnings = warnings;
  } catch (err) {
    failure = namingVm(err, vm.name);
  } finally {
    await state.qmp?.close().catch(() => undefined);
    if (state.startedPaused) {
      report({ phase: 'stopping-vm', disk: null });
      await stopAgain(req.engine, vm, warnings);
    }
  }
  if (failure || !result) {
    const err = failure ?? new AppError('BACKUP_FAILED', `backup of vm ${vm.name} failed`);
    const left = warnings.length > 0 ? ` (${warnings.join('; ')})` : '';
    await postEvent(req.engine, vm, 'error', `olvm-backup: backup of VM ${vm.name} failed: ${describeError(err)}${left}`);
    throw warnings.length > 0 ? new AppError(err.code, `${err.message}; also: ${warnings.join('; ')}`, { cause: err.cause, ...(err.details ? { details: err.details } : {}) }) : err;
  }
  result.durationMs = Date.now() - started;
  const read = result.manifest.disks.reduce((n, d) => n + d.bytesRead, 0);
  const stored = result.manifest.disks.reduce((n, d) => n + d.bytesStored, 0);
  const modes = result.manifest.disks.map((d) => `${diskLabel(d)}: ${d.mode}`).join(', ');
  await postEvent(
    req.engine,
    vm,
    'normal',
    `olvm-backup: backup of VM ${vm.name} (${result.method} method) finished in ${(result.durationMs / 1000).toFixed(1)} s (${modes}); ` +
      `read ${mib(read)} MiB, stored ${mib(stored)} MiB new; ${consistencyText(result.manifest)}; restore point ${result.manifest.pointId}`,
  );
  return result;
}

/** The QMP method: QEMU's monitor and NBD through the host link. A VM that is down is started
 *  paused for it (the caller stops it again: `state.startedPaused`). */
async function viaQmp(
  req: EngineVmBackupRequest,
  vm: Vm,
  state: { startedPaused: boolean; qmp?: QmpSession },
  report: (p: Partial<BackupProgress>) => void,
): Promise<EngineVmBackupResult> {
  const call = req.signal ? { signal: req.signal } : {};
  let running = vm;
  if (vm.status === 'down') {
    state.startedPaused = true; // set before the call: a start that times out may still happen
    req.onVmStarting?.();
    report({ phase: 'starting-vm' });
    await req.engine.startVm(vm.id, { pause: true, ...call });
    running = await req.engine.waitForVmStatus(vm.id, ['paused', 'up'], { timeoutMs: req.startTimeoutMs ?? 120_000, ...call });
  } else if (!RUNNING_VM_STATUSES.includes(vm.status)) {
    throw new AppError('BACKUP_FAILED', `vm ${vm.name} is ${vm.status}: it can be backed up when it is up or down`);
  }
  const { link, scratchDir } = await hostOf(req, running);
  const qmp = await link.openQmp(vm, call);
  state.qmp = qmp;
  const devices = await new BlockApi(qmp).listDevices(call);
  const vmDisks = vm.diskAttachments?.flatMap((a) => (a.disk ? [{ ...a, disk: a.disk }] : [])) ?? (await req.engine.listVmDisks(vm.id, call));
  const mapping = mapDisks(vmDisks, devices);
  if (mapping.mapped.length === 0) {
    const why = mapping.excluded.length > 0 ? 'every disk is excluded (backup=0)' : 'no qemu device matches a disk of the vm';
    throw new AppError('BACKUP_VM_NO_DISKS', `vm ${vm.name} has nothing to back up: ${why}`);
  }
  const diskMeta: Record<string, DiskMeta> = {};
  const aliases = new Map<string, string>();
  for (const m of mapping.mapped) {
    diskMeta[m.device.deviceId] = { diskId: m.disk.disk.id, alias: m.disk.disk.alias, description: m.disk.disk.description };
    aliases.set(m.device.deviceId, m.disk.disk.alias);
  }
  const { manifest, warnings: w } = await runBackup({
    vm: { key: vm.id, name: vm.name, id: vm.id },
    qmp,
    host: link,
    repository: req.repository,
    scratchDir,
    devices: mapping.mapped.map((m) => m.device.deviceId),
    ...(req.forceFull ? { forceFull: true } : {}),
    ...(req.lockDays !== undefined ? { lockDays: req.lockDays } : {}),
    ...(req.transientBitmaps ? { transientBitmaps: true } : {}),
    consistency: req.consistency ?? 'auto',
    guestAgent: () => link.openGuestAgent(vm, { timeoutMs: 5000, ...call }),
    ...(req.guestAgentTimeouts ? { guestAgentTimeouts: req.guestAgentTimeouts } : {}),
    vmDefinition: vm.configuration ? { kind: 'ovf', content: vm.configuration.data } : null,
    diskMeta,
    meta: {
      ...req.meta,
      engine: {
        vmId: vm.id,
        clusterId: vm.clusterId ?? null,
        hostId: vm.hostId ?? null,
        startedPaused: state.startedPaused,
        excluded: mapping.excluded.map((e) => ({ diskId: e.disk.disk.id, alias: e.disk.disk.alias, reason: e.reason })),
        unmappedDevices: mapping.unmappedDevices.map((u) => ({ device: u.device.deviceId, reason: u.reason })),
      },
    },
    ...(req.signal ? { signal: req.signal } : {}),
    // people know a disk by its engine alias, not by its qemu device id
    onProgress: (p) => report({ ...p, disk: p.disk === null ? null : (aliases.get(p.disk) ?? p.disk) }),
  });
  return { manifest, vm, excluded: mapping.excluded, unmapped: mapping.unmappedDevices, startedPaused: state.startedPaused, method: 'qmp', durationMs: 0, warnings: w };
}

/** The engine method: the engine's backup API and imageio; a VM that is down is backed up cold. */
async function viaEngine(req: EngineVmBackupRequest, vm: Vm, report: (p: Partial<BackupProgress>) => void): Promise<EngineVmBackupResult> {
  if (vm.status !== 'up' && vm.status !== 'down') {
    throw new AppError('BACKUP_FAILED', `vm ${vm.name} is ${vm.status}: the engine backs up a vm that is up or down`);
  }
  const call = req.signal ? { signal: req.signal } : {};
  const vmDisks = vm.diskAttachments?.flatMap((a) => (a.disk ? [{ ...a, disk: a.disk }] : [])) ?? (await req.engine.listVmDisks(vm.id, call));
  // no QEMU devices here: every active disk not described backup=0 is backed up
  const mapping = mapDisks<BlockDevice>(vmDisks, []);
  if (mapping.missingDisks.length === 0) {
    const why = mapping.excluded.length > 0 ? 'every disk is excluded (backup=0)' : 'it has no active disk';
    throw new AppError('BACKUP_VM_NO_DISKS', `vm ${vm.name} has nothing to back up: ${why}`);
  }
  const { engineApiBackup } = await import('./engineApiBackup');
  const { manifest, warnings } = await engineApiBackup({
    engine: req.engine,
    vm,
    disks: mapping.missingDisks,
    excluded: mapping.excluded,
    repository: req.repository,
    ...(req.forceFull ? { forceFull: true } : {}),
    ...(req.lockDays !== undefined ? { lockDays: req.lockDays } : {}),
    consistency: req.consistency ?? 'auto',
    ...(req.meta ? { meta: req.meta } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
    ...(req.engineTimeouts ? { timeouts: req.engineTimeouts } : {}),
    report,
    ...(req.onEngineBackup ? { onEngineBackup: req.onEngineBackup } : {}),
  });
  return { manifest, vm, excluded: mapping.excluded, unmapped: [], startedPaused: false, method: 'engine', durationMs: 0, warnings };
}

/**
 * `auto`: the QMP method when the VM runs and a link to its host is configured, the engine
 * method otherwise (a VM that is down is backed up cold, never started).
 */
async function resolveMethod(req: EngineVmBackupRequest, vm: Vm): Promise<PointMethod> {
  const m = req.method ?? 'auto';
  if (m !== 'auto') return m;
  return autoMethod(vm.status, RUNNING_VM_STATUSES.includes(vm.status) && (await hostLinked(req, vm)));
}

/** Whether the host link reaches the host the VM runs on (no connection is made). */
async function hostLinked(req: EngineVmBackupRequest, vm: Vm): Promise<boolean> {
  if (!(req.host instanceof HostDirectory)) return true;
  const call = req.signal ? { signal: req.signal } : {};
  try {
    const hostId = vm.hostId ?? (await req.engine.getVm(vm.id, call)).hostId;
    if (!hostId) return false;
    req.host.linkFor((await req.engine.getHost(hostId, call)).address);
    return true;
  } catch {
    // no entry for the host (or the engine hides it): the engine method needs no host link
    return false;
  }
}

/** The link to the host the VM runs on now (a VM started for the backup may land anywhere). */
async function hostOf(req: EngineVmBackupRequest, vm: Vm): Promise<{ link: VmHostLink; scratchDir: string }> {
  if (!(req.host instanceof HostDirectory)) return { link: req.host, scratchDir: req.scratchDir };
  const hostId = vm.hostId ?? (await req.engine.getVm(vm.id)).hostId;
  if (!hostId) throw new AppError('BACKUP_FAILED', `the engine reports no host for vm ${vm.name} (a portal user's view hides hosts: use the service account)`);
  const host = await req.engine.getHost(hostId);
  const resolved = req.host.linkFor(host.address);
  return { link: resolved.link, scratchDir: resolved.scratchDir ?? req.scratchDir };
}

/** Every failure's one line names the VM: keep errors that already do, wrap the others. */
function namingVm(err: unknown, vmName: string): AppError {
  if (err instanceof AppError && err.message.includes(vmName)) return err;
  return new AppError(err instanceof AppError ? err.code : 'BACKUP_FAILED', `backup of vm ${vmName} failed`, { cause: err });
}

function consistencyText(m: Manifest): string {
  const reason = readPointMeta(m).consistencyReason;
  const why = reason ? ` (${reason})` : '';
  return `${m.consistency === 'filesystem' ? 'filesystem-consistent' : 'crash-consistent'}${why}`;
}

function mib(n: number): string {
  return (n / (1 << 20)).toFixed(1);
}

/** Puts a VM the backup started back to down. A stop the engine refuses because the VM is
 *  already down (its start never happened) is fine; anything else is reported. */
async function stopAgain(engine: EngineClient, vm: Vm, warnings: string[]): Promise<void> {
  try {
    await engine.stopVm(vm.id, { reason: 'olvm-backup: backup finished' });
    await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 120_000 });
  } catch (err) {
    const now = await engine.getVm(vm.id).catch(() => undefined);
    if (now?.status === 'down') return;
    warnings.push(`vm ${vm.name} was started for the backup and could not be stopped again: ${describeError(err)}`);
  }
}

/** The event log is where admins look; failing to write there must not fail the backup. */
async function postEvent(engine: EngineClient, vm: Vm, severity: 'normal' | 'error', description: string): Promise<void> {
  await engine.addEvent({ description: description.slice(0, 4000), severity, vmId: vm.id }).catch(() => undefined);
}
