import { AppError, isAppError } from '../../errors';
import { IMAGE_TRANSFER_PHASES, type EngineClient, type ImageioCapabilities, type ImageioClient, type ImageTransfer, type ImageTransferDirection, type ImageTransferPhase } from '../../engine';

/** Phases in which a transfer is over for good. */
const FINISHED: readonly ImageTransferPhase[] = ['finished_success', 'finished_failure', 'finished_cleanup'];
/** Phases in which a transfer is over or on its way out. */
const ENDED: readonly ImageTransferPhase[] = ['finished_success', 'finished_failure', 'finished_cleanup', 'cancelled', 'cancelled_system', 'cancelled_user'];
/** Phases after `finalize` that need no more waiting: over, or stuck (the engine failed). */
const AFTER_FINALIZE: readonly ImageTransferPhase[] = [...ENDED, 'paused_system', 'paused_user'];
/** Anything but the phases a new transfer passes through on its way to `transferring`. */
const ON_THE_WAY: readonly ImageTransferPhase[] = ['unknown', 'initializing', 'resuming'];
const SETTLED: readonly ImageTransferPhase[] = IMAGE_TRANSFER_PHASES.filter((p) => !ON_THE_WAY.includes(p));

export interface OpenedTransfer {
  transfer: ImageTransfer;
  imageio: ImageioClient;
  capabilities: ImageioCapabilities;
  /** Which endpoint is used: the host's daemon or the engine's proxy. */
  via: 'daemon' | 'proxy';
}

export interface TransferTimeouts {
  engineRequestMs?: number;
  imageioRequestMs: number;
  transferPhaseMs: number;
}

/**
 * Starts a transfer of one disk and gets it ready for I/O (reference §5, §6.1): create, wait for
 * `transferring` (any other settled phase is a failure, as in the SDK's helper), pick the
 * daemon's or the proxy's URL, then OPTIONS first. `onCreated` runs as soon as the engine
 * knows the transfer, so a failure from there on can cancel it.
 */
export async function openTransfer(
  engine: EngineClient,
  p: {
    diskId: string;
    diskName: string;
    direction: ImageTransferDirection;
    useProxy: boolean;
    maxConnections: number;
    inactivityTimeoutSeconds: number;
    timeouts: TransferTimeouts;
    signal?: AbortSignal;
    onCreated: (t: ImageTransfer) => void;
    warn: (msg: string) => void;
  },
): Promise<OpenedTransfer> {
  const call = { signal: p.signal, timeoutMs: p.timeouts.engineRequestMs };
  const created = await engine.createImageTransfer(
    // 'cancel': if we die mid-upload the engine removes the half-written disk by itself
    { diskId: p.diskId, direction: p.direction, format: 'raw', inactivityTimeoutSeconds: p.inactivityTimeoutSeconds, timeoutPolicy: 'cancel' },
    call,
  );
  p.onCreated(created);
  const ready = await engine.waitForTransferPhase(created.id, SETTLED, { timeoutMs: p.timeouts.transferPhaseMs, signal: p.signal });
  if (ready === null) {
    throw new AppError('ENGINE_TRANSFER_FAILED', `the ${p.direction} transfer of disk ${p.diskName} vanished before it started`);
  }
  if (ready.phase !== 'transferring') {
    throw new AppError('ENGINE_TRANSFER_FAILED', `the ${p.direction} transfer of disk ${p.diskName} went to ${ready.phase} instead of transferring`, {
      details: { transferId: ready.id, phase: ready.phase },
    });
  }
  const { url, via } = pickUrl(ready, p.useProxy, p.diskName, p.warn);
  const imageio = engine.imageio(url, { timeoutMs: p.timeouts.imageioRequestMs, maxConnections: p.maxConnections });
  try {
    const capabilities = await imageio.options({ signal: p.signal });
    if (p.direction === 'upload') {
      const missing = ['zero', 'flush'].filter((f) => !capabilities.features.includes(f));
      if (missing.length) {
        throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio at ${imageio.origin} lacks ${missing.join(' and ')} (features: ${capabilities.features.join(', ') || 'none'})`);
      }
    }
    return { transfer: ready, imageio, capabilities, via };
  } catch (err) {
    imageio.close();
    throw err;
  }
}

function pickUrl(t: ImageTransfer, useProxy: boolean, diskName: string, warn: (msg: string) => void): { url: string; via: 'daemon' | 'proxy' } {
  const wanted = useProxy ? t.proxyUrl : t.transferUrl;
  if (wanted) return { url: wanted, via: useProxy ? 'proxy' : 'daemon' };
  const other = useProxy ? t.transferUrl : t.proxyUrl;
  if (!other) throw new AppError('ENGINE_PROTOCOL_ERROR', `the transfer of disk ${diskName} is transferring but has neither transfer_url nor proxy_url`);
  warn(`the transfer of disk ${diskName} has no ${useProxy ? 'proxy' : 'daemon'} url; using the ${useProxy ? 'daemon' : 'proxy'}`);
  return { url: other, via: useProxy ? 'daemon' : 'proxy' };
}

/**
 * Finalize and wait for the end (reference §5.2): `finished_success` is success; an engine that
 * already forgot the transfer (404, before 4.4.7) is judged by the disk's status.
 */
export async function finalizeTransfer(
  engine: EngineClient,
  t: { id: string; diskId: string; diskName: string; direction: ImageTransferDirection },
  o: { timeouts: TransferTimeouts; signal?: AbortSignal },
): Promise<void> {
  await engine.finalizeImageTransfer(t.id, { signal: o.signal, timeoutMs: o.timeouts.engineRequestMs });
  const end = await engine.waitForTransferPhase(t.id, AFTER_FINALIZE, { timeoutMs: o.timeouts.transferPhaseMs, signal: o.signal });
  if (end === null) {
    const disk = await engine.getDisk(t.diskId, { signal: o.signal, timeoutMs: o.timeouts.engineRequestMs }).catch((err: unknown) => {
      if (isAppError(err, 'ENGINE_NOT_FOUND')) return null;
      throw err;
    });
    if (disk?.status === 'ok') return;
    throw new AppError('ENGINE_TRANSFER_FAILED', `the ${t.direction} of disk ${t.diskName} ended with the disk ${disk ? disk.status ?? 'in no status' : 'gone'}`);
  }
  if (end.phase !== 'finished_success') {
    throw new AppError('ENGINE_TRANSFER_FAILED', `the engine could not finalize the ${t.direction} of disk ${t.diskName} (phase ${end.phase})`, {
      details: { transferId: t.id, phase: end.phase },
    });
  }
}

/** Cancel (an upload's disk is then deleted by the engine) and wait until it is over. */
export async function cancelTransfer(engine: EngineClient, id: string, o: { timeoutMs: number; engineRequestMs?: number }): Promise<void> {
  try {
    await engine.cancelImageTransfer(id, { timeoutMs: o.engineRequestMs });
  } catch (err) {
    // already over (409 "phase ...") or gone: the wait below tells
    if (!isAppError(err, 'ENGINE_HTTP_ERROR') && !isAppError(err, 'ENGINE_NOT_FOUND')) throw err;
  }
  await engine.waitForTransferPhase(id, FINISHED, { timeoutMs: o.timeoutMs });
}
