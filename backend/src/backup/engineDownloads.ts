/**
 * Image transfers that download the disks of an engine backup (reference §5, §10): create one
 * with `backup`, wait for `transferring` as the SDK does (paused_system, finished_failure or a
 * vanished transfer = failed), open its imageio ticket as a DiskSource, finalize it; and end one
 * that must not live on (cancel, finalize if the engine refuses, wait until it is over).
 */
import { AppError, describeError, isAppError } from '../errors';
import { IMAGE_TRANSFER_PHASES, type EngineClient, type ImageTransfer, type ImageTransferPhase } from '../engine';
import { ImageioSource } from './imageioSource';

/** Phases in which a transfer is over: the engine refuses to finalize a backup before its
 *  transfers get there (a cancelled one still passes through finalizing_failure). */
export const TRANSFER_ENDED: readonly ImageTransferPhase[] = ['finished_success', 'finished_failure', 'finished_cleanup'];
const AFTER_FINALIZE: readonly ImageTransferPhase[] = [...TRANSFER_ENDED, 'paused_system', 'paused_user'];
const ON_THE_WAY: readonly ImageTransferPhase[] = ['unknown', 'initializing', 'resuming'];
const SETTLED: readonly ImageTransferPhase[] = IMAGE_TRANSFER_PHASES.filter((p) => !ON_THE_WAY.includes(p));

export interface DownloadTimeouts {
  /** Waits for a transfer's phase (transferring, finished). */
  transferPhaseMs: number;
  /** Each imageio request; a hung range fails after this. */
  imageioRequestMs: number;
  /** Seconds the engine lets the ticket idle before cancelling it (0 disables). */
  inactivityTimeoutSeconds: number;
  /** Longest pause between two reads of a phase (the first ones are shorter). */
  pollIntervalMs: number;
}

export interface OpenDownload {
  transfer: ImageTransfer;
  source: ImageioSource;
  /** Reads in flight the copy may use: at most the ticket's max_readers. */
  readers: number;
}

/** Most parallel range reads per disk, whatever imageio allows (its default is 8). */
const MAX_READERS = 8;

export async function openDownload(
  engine: EngineClient,
  p: { backupId: string; diskId: string; diskName: string; size: number | undefined; timeouts: DownloadTimeouts; signal?: AbortSignal; onCreated: (t: ImageTransfer) => void },
): Promise<OpenDownload> {
  const call = p.signal ? { signal: p.signal } : {};
  const created = await engine.createImageTransfer(
    {
      diskId: p.diskId,
      backupId: p.backupId,
      direction: 'download',
      format: 'raw',
      inactivityTimeoutSeconds: p.timeouts.inactivityTimeoutSeconds,
      // if we die, the engine ends the ticket by itself once it idles
      timeoutPolicy: 'cancel',
    },
    call,
  );
  p.onCreated(created);
  const ready = await engine.waitForTransferPhase(created.id, SETTLED, { timeoutMs: p.timeouts.transferPhaseMs, intervalMs: p.timeouts.pollIntervalMs, ...call });
  if (ready === null) throw new AppError('ENGINE_TRANSFER_FAILED', `the download of disk ${p.diskName} vanished before it started`);
  if (ready.phase !== 'transferring') {
    throw new AppError('ENGINE_TRANSFER_FAILED', `the download of disk ${p.diskName} went to ${ready.phase} instead of transferring`, {
      details: { transferId: ready.id, phase: ready.phase },
    });
  }
  const url = ready.transferUrl ?? ready.proxyUrl;
  if (!url) throw new AppError('ENGINE_PROTOCOL_ERROR', `the download of disk ${p.diskName} is transferring but has neither transfer_url nor proxy_url`);
  const client = engine.imageio(url, { timeoutMs: p.timeouts.imageioRequestMs, maxConnections: MAX_READERS });
  try {
    const keepAliveMs = p.timeouts.inactivityTimeoutSeconds > 0 ? (p.timeouts.inactivityTimeoutSeconds * 1000) / 3 : 0;
    const source = await ImageioSource.open(client, { ...(p.size !== undefined ? { expectedSize: p.size } : {}), keepAliveMs, ...call });
    return { transfer: ready, source, readers: Math.max(1, Math.min(source.maxReaders, MAX_READERS)) };
  } catch (err) {
    client.close();
    throw err;
  }
}

/** Finalize and wait for `finished_success`; a transfer the engine already forgot (404, before
 *  4.4.7) counts as finished: a download changes no disk. */
export async function finalizeDownload(engine: EngineClient, t: { id: string; diskName: string }, o: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal }): Promise<void> {
  const call = o.signal ? { signal: o.signal } : {};
  await engine.finalizeImageTransfer(t.id, call);
  const end = await engine.waitForTransferPhase(t.id, AFTER_FINALIZE, { timeoutMs: o.timeoutMs, ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}), ...call });
  if (end !== null && end.phase !== 'finished_success') {
    throw new AppError('ENGINE_TRANSFER_FAILED', `the engine could not finalize the download of disk ${t.diskName} (phase ${end.phase})`, {
      details: { transferId: t.id, phase: end.phase },
    });
  }
}

/**
 * Ends a transfer that must not live on: cancel, or finalize when the engine refuses the cancel
 * (a download can always be finalized, reference §5.2), then wait until it is over. Never uses
 * the backup's signal: an aborted backup must still clean up. Returns a problem, or undefined.
 */
export async function endTransfer(engine: EngineClient, id: string, timeoutMs: number): Promise<string | undefined> {
  const call = { timeoutMs: Math.min(timeoutMs, 30_000) };
  try {
    const now = await engine.getImageTransfer(id, call).catch((e: unknown) => (isAppError(e, 'ENGINE_NOT_FOUND') ? null : undefined));
    if (now === null || (now && TRANSFER_ENDED.includes(now.phase))) return undefined;
    // already on its way out (cancelled, finalizing): only the wait is left
    const leaving = now !== undefined && (now.phase.startsWith('cancelled') || now.phase.startsWith('finalizing'));
    if (!leaving) {
      try {
        await engine.cancelImageTransfer(id, call);
      } catch (cancelErr) {
        await engine.finalizeImageTransfer(id, call).catch((finErr: unknown) => {
          throw new AppError('ENGINE_TRANSFER_FAILED', `cancel failed (${describeError(cancelErr)}) and so did finalize`, { cause: finErr });
        });
      }
    }
    const end = await engine.waitForTransferPhase(id, TRANSFER_ENDED, { timeoutMs });
    return end === null || TRANSFER_ENDED.includes(end.phase) ? undefined : `image transfer ${id} is still ${end.phase}`;
  } catch (err) {
    return `ending image transfer ${id} failed: ${describeError(err)}`;
  }
}
