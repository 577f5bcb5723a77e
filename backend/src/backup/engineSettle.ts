/**
 * Leaves the engine clean after an engine backup of ours that did not end normally: the backup
 * is finalized when it is still initializing/starting/ready (the VM's disks stay locked for
 * other backups until then) and the image transfers still open for it are ended. Used by the
 * engine method's own failure path and, through backup/index.ts, by the service's start-up
 * recovery for a backup a dead process left behind (found by the id recorded through
 * `onEngineBackup`).
 */
import { AppError, describeError, isAppError } from '../errors';
import type { EngineClient, VmBackup } from '../engine';
import { endTransfer, TRANSFER_ENDED } from './engineDownloads';
import type { EngineBackupRef } from './types';

export interface SettleOptions {
  signal?: AbortSignal;
  /** Each wait for a phase (a backup becoming ready, a finalize completing); default 5 min. */
  phaseTimeoutMs?: number;
}

const DEFAULT_PHASE_TIMEOUT_MS = 300_000;

/** One line for the job's log; throws when the engine cannot be asked or the backup could not
 *  be brought to an end. 404 = the engine has already forgotten it: fine. */
export async function settleEngineBackup(engine: EngineClient, ref: EngineBackupRef, signal?: AbortSignal): Promise<string> {
  return settle(engine, ref, signal ? { signal } : {});
}

export async function settle(engine: EngineClient, ref: EngineBackupRef, o: SettleOptions): Promise<string> {
  const timeoutMs = o.phaseTimeoutMs ?? DEFAULT_PHASE_TIMEOUT_MS;
  const call = o.signal ? { signal: o.signal } : {};
  const what = `engine backup ${ref.backupId} of vm ${ref.vmId}`;
  const problems: string[] = [];
  let b = await read(engine, ref, call);
  if (b && (b.phase === 'initializing' || b.phase === 'starting')) {
    // a backup cannot be finalized before it is ready; the engine gets there by itself
    b = await engine.waitForBackupPhase(ref.vmId, ref.backupId, ['ready', 'succeeded', 'failed'], { timeoutMs, goneIsAnswer: true, ...call });
  }
  const ended = await endTransfersOf(engine, ref.backupId, timeoutMs, call);
  problems.push(...ended.problems);
  let done: string;
  if (b === null) {
    done = 'already gone';
  } else if (b.phase === 'succeeded' || b.phase === 'failed') {
    done = `already ${b.phase}`;
  } else {
    if (b.phase === 'ready') {
      try {
        await engine.finalizeBackup(ref.vmId, ref.backupId, call);
      } catch (err) {
        // finalized meanwhile by someone else is fine; anything else is told below
        if (!isAppError(err, 'ENGINE_NOT_FOUND')) problems.push(`finalize: ${describeError(err)}`);
      }
    }
    const end = await engine.waitForBackupPhase(ref.vmId, ref.backupId, ['succeeded', 'failed'], { timeoutMs, goneIsAnswer: true, ...call });
    done = end === null ? 'finalized (the engine has dropped it)' : `finalized (${end.phase})`;
  }
  const transfers = ended.count > 0 ? `; ended ${ended.count} image transfer${ended.count === 1 ? '' : 's'} left open` : '';
  if (problems.length > 0) {
    throw new AppError('ENGINE_BACKUP_FAILED', `${what}: ${done}${transfers}; but ${problems.join('; ')}`, { details: { backupId: ref.backupId, vmId: ref.vmId } });
  }
  return `${what}: ${done}${transfers}`;
}

async function read(engine: EngineClient, ref: EngineBackupRef, call: { signal?: AbortSignal }): Promise<VmBackup | null> {
  try {
    return await engine.getBackup(ref.vmId, ref.backupId, call);
  } catch (err) {
    if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
    throw err;
  }
}

/** The transfers the engine lists for the backup (their `backup` link) that are not over. */
async function endTransfersOf(engine: EngineClient, backupId: string, timeoutMs: number, call: { signal?: AbortSignal }): Promise<{ count: number; problems: string[] }> {
  const open = (await engine.listImageTransfers(call)).filter((t) => t.backupId === backupId && !TRANSFER_ENDED.includes(t.phase));
  const problems: string[] = [];
  for (const t of open) {
    const problem = await endTransfer(engine, t.id, timeoutMs);
    if (problem) problems.push(problem);
  }
  return { count: open.length, problems };
}
