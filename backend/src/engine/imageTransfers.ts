import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseImageTransfer, parseImageTransfers } from './parse/imageTransfer';
import { pollUntil, type PollOptions } from './poll';
import type { ImageTransfer, ImageTransferDirection, ImageTransferPhase } from './types';

/** An image transfer to start (reference §5.1). */
export interface NewImageTransfer {
  diskId: string;
  direction: ImageTransferDirection;
  /** 'raw' (the default here): guest data through imageio's NBD backend, converted to the
   *  disk's format on upload. 'cow' moves the stored qcow2 bytes. */
  format?: 'raw' | 'cow';
  /** The host whose imageio serves it; default: the engine picks one. */
  hostId?: string;
  /** Seconds without a client request before the engine acts per `timeoutPolicy`; 0 disables. */
  inactivityTimeoutSeconds?: number;
  /** 4.4.5+: 'cancel' deletes an abandoned upload's disk, 'pause' keeps it locked. */
  timeoutPolicy?: 'legacy' | 'pause' | 'cancel';
  /** A download of the disk as this engine backup froze it (reference §5.1); `format` must be raw. */
  backupId?: string;
}

/** `POST /imagetransfers`: answers at once, in `initializing`; the URLs come with `transferring`. */
export async function createImageTransfer(conn: EngineConnection, t: NewImageTransfer, opts: EngineCallOptions = {}): Promise<ImageTransfer> {
  const body: Record<string, unknown> = { disk: { id: t.diskId }, direction: t.direction, format: t.format ?? 'raw' };
  if (t.hostId !== undefined) body.host = { id: t.hostId };
  if (t.inactivityTimeoutSeconds !== undefined) body.inactivity_timeout = t.inactivityTimeoutSeconds;
  if (t.timeoutPolicy !== undefined) body.timeout_policy = t.timeoutPolicy;
  if (t.backupId !== undefined) body.backup = { id: t.backupId };
  const reply = await conn.request({ ...opts, method: 'POST', path: '/imagetransfers', body });
  return parseImageTransfer(entityOf(reply, `new image transfer of disk ${t.diskId}`));
}

export async function getImageTransfer(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<ImageTransfer> {
  const reply = await conn.request({ ...opts, method: 'GET', path: `/imagetransfers/${seg(id)}` });
  return parseImageTransfer(entityOf(reply, `image transfer ${id}`));
}

export async function listImageTransfers(conn: EngineConnection, opts: EngineCallOptions = {}): Promise<ImageTransfer[]> {
  return parseImageTransfers(await conn.request({ ...opts, method: 'GET', path: '/imagetransfers' }));
}

/** Ends a transfer successfully: finalizing_success, then finished_success (or finished_failure). */
export async function finalizeImageTransfer(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'POST', path: `/imagetransfers/${seg(id)}/finalize`, body: {} });
}

/** Abandons a transfer; the engine deletes an upload's disk (reference §5.2). */
export async function cancelImageTransfer(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'POST', path: `/imagetransfers/${seg(id)}/cancel`, body: {} });
}

/**
 * Polls the transfer until its phase is one of `phases`; resolves `null` when the engine no
 * longer knows it (404: engines before 4.4.7 drop a transfer as soon as it ends, so the caller
 * must then look at the disk, reference §5.2).
 */
export async function waitForTransferPhase(
  conn: EngineConnection,
  id: string,
  phases: readonly ImageTransferPhase[],
  opts: PollOptions,
): Promise<ImageTransfer | null> {
  const t = await pollUntil(
    conn,
    {
      what: `image transfer ${id} reaching ${phases.join('|')}`,
      read: (call) => getImageTransfer(conn, id, call),
      done: (x) => phases.includes(x.phase),
      last: (x) => `last phase: ${x?.phase ?? 'not read'}`,
      notFoundIsAnswer: true,
    },
    opts,
  );
  return t ?? null;
}
