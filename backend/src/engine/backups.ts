/**
 * The engine's backup API (reference §4): start a backup of a VM's disks, read it and its disks'
 * `backup_mode`, finalize it, wait for its phases; the VM's checkpoints. A backup the engine has
 * dropped (404) or that went `failed` is explained from the engine's event log, as the SDK's
 * example does (reference §4.2).
 */
import { AppError, isAppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { listEvents } from './events';
import { entityOf } from './parse/fields';
import { parseBackup, parseBackupDisks, parseBackups, parseCheckpoint, parseCheckpoints } from './parse/backup';
import { pollUntil, type PollOptions } from './poll';
import type { BackupDisk, BackupPhase, Checkpoint, VmBackup } from './backupTypes';

export interface NewVmBackup {
  /** The client's id for the backup, so a caller that dies can find it again. */
  id?: string;
  diskIds: string[];
  /** Incremental from this checkpoint; absent = full of every disk. */
  fromCheckpointId?: string;
  description?: string;
  /** `require_consistency=true`: the engine fails the backup when the guest freeze fails (only
   *  StartVmBackup honours it, see `legacy`). */
  requireConsistency?: boolean;
  /** `legacy=true`: StartVmBackup even where the cluster level makes hybrid (snapshot-based)
   *  backups the default; an engine that does not know the flag ignores it. */
  legacy?: boolean;
}

/** `POST /vms/{id}/backups`: answers at once, in `initializing`. */
export async function startBackup(conn: EngineConnection, vmId: string, b: NewVmBackup, opts: EngineCallOptions = {}): Promise<VmBackup> {
  const body: Record<string, unknown> = { disks: { disk: b.diskIds.map((id) => ({ id })) } };
  if (b.id !== undefined) body.id = b.id;
  if (b.fromCheckpointId !== undefined) body.from_checkpoint_id = b.fromCheckpointId;
  if (b.description !== undefined) body.description = b.description.slice(0, 1024);
  const flags = { ...(b.requireConsistency ? { require_consistency: true } : {}), ...(b.legacy ? { legacy: true } : {}) };
  const query = Object.keys(flags).length > 0 ? flags : undefined;
  const reply = await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(vmId)}/backups`, body, ...(query ? { query } : {}) });
  return parseBackup(entityOf(reply, `new backup of vm ${vmId}`));
}

export async function getBackup(conn: EngineConnection, vmId: string, backupId: string, opts: EngineCallOptions = {}): Promise<VmBackup> {
  const reply = await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/backups/${seg(backupId)}` });
  return parseBackup(entityOf(reply, `backup ${backupId}`));
}

export async function listBackups(conn: EngineConnection, vmId: string, opts: EngineCallOptions = {}): Promise<VmBackup[]> {
  return parseBackups(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/backups` }));
}

/** The backup's disks with their `backup_mode` (reference §4.5: always check it per disk). */
export async function listBackupDisks(conn: EngineConnection, vmId: string, backupId: string, opts: EngineCallOptions = {}): Promise<BackupDisk[]> {
  return parseBackupDisks(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/backups/${seg(backupId)}/disks` }));
}

/** `POST …/finalize`: ends the backup (finalize the image transfers first, reference §4.3). */
export async function finalizeBackup(conn: EngineConnection, vmId: string, backupId: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(vmId)}/backups/${seg(backupId)}/finalize`, body: {} });
}

/**
 * Polls the backup until its phase is one of `phases`. `failed` when not wanted, or a backup the
 * engine no longer knows, is ENGINE_BACKUP_FAILED carrying the engine's last event about it.
 * With `goneIsAnswer` a 404 resolves `null` instead (a backup that is expected to go away).
 */
export async function waitForBackupPhase(
  conn: EngineConnection,
  vmId: string,
  backupId: string,
  phases: readonly BackupPhase[],
  opts: PollOptions & { goneIsAnswer?: boolean },
): Promise<VmBackup | null> {
  const wanted = [...phases];
  if (!wanted.includes('failed')) wanted.push('failed');
  const b = await pollUntil(
    conn,
    {
      what: `backup ${backupId} reaching ${phases.join('|')}`,
      read: (call) => getBackup(conn, vmId, backupId, call),
      done: (x) => wanted.includes(x.phase),
      last: (x) => `last phase: ${x?.phase ?? 'not read'}`,
      notFoundIsAnswer: true,
    },
    opts,
  );
  if (b === undefined) {
    if (opts.goneIsAnswer) return null;
    throw new AppError('ENGINE_BACKUP_FAILED', `the engine no longer knows backup ${backupId}${await lastEventText(conn, backupId, opts.signal)}`, {
      details: { backupId },
    });
  }
  if (b.phase === 'failed' && !phases.includes('failed')) {
    throw new AppError('ENGINE_BACKUP_FAILED', `engine backup ${backupId} failed${await lastEventText(conn, backupId, opts.signal)}`, {
      details: { backupId, phase: b.phase },
    });
  }
  return b;
}

/** ": <description of the newest engine event naming the backup>", or '' (best effort). The
 *  engine finds them by a free-text search on the id (what the SDK does); an engine whose search
 *  does not match inside the text is read newest first instead. */
async function lastEventText(conn: EngineConnection, backupId: string, signal: AbortSignal | undefined): Promise<string> {
  const call = { timeoutMs: 15_000, ...(signal ? { signal } : {}) };
  try {
    let events = (await listEvents(conn, { search: backupId, max: 20, ...call }).catch(() => [])).filter((e) => e.description.includes(backupId));
    if (events.length === 0) events = (await listEvents(conn, { max: 200, ...call })).filter((e) => e.description.includes(backupId));
    const ev = events.find((e) => e.origin !== 'olvm-backup' && e.severity !== 'normal') ?? events[0];
    return ev ? `: ${ev.description}` : '';
  } catch {
    return '';
  }
}

export async function listCheckpoints(conn: EngineConnection, vmId: string, opts: EngineCallOptions = {}): Promise<Checkpoint[]> {
  return parseCheckpoints(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/checkpoints` }));
}

/** The checkpoint, or null when the engine does not have it (404). */
export async function getCheckpoint(conn: EngineConnection, vmId: string, id: string, opts: EngineCallOptions = {}): Promise<Checkpoint | null> {
  try {
    const reply = await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/checkpoints/${seg(id)}` });
    return parseCheckpoint(entityOf(reply, `checkpoint ${id}`));
  } catch (err) {
    if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
    throw err;
  }
}
