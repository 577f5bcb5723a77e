import type { EngineClient, ImageioClient, ImageTransfer } from '../../engine';
import { StreamHash } from './streamHash';
import { finalizeTransfer, openTransfer, type TransferTimeouts } from './transfer';

const PIECE = 8 << 20;

interface Piece {
  offset: number;
  length: number;
  zero: boolean;
}

/**
 * Reads a disk back from the engine through a download transfer (`format=raw`: guest data) and
 * returns the SHA-256 (hex) of its first `size` bytes. Ranges the server's extents report as
 * zero are hashed as zeros without being downloaded; the rest comes with ranged GETs of 8 MiB,
 * several in flight, hashed in order (on a thread of its own).
 */
export async function readBackSha256(
  engine: EngineClient,
  p: {
    diskId: string;
    diskName: string;
    size: number;
    useProxy: boolean;
    inFlight: number;
    timeouts: TransferTimeouts;
    signal?: AbortSignal;
    onCreated: (t: ImageTransfer) => void;
    onEnded: (transferId: string) => void;
    onBytes?: (n: number) => void;
    warn: (msg: string) => void;
  },
): Promise<string> {
  const opened = await openTransfer(engine, {
    diskId: p.diskId,
    diskName: p.diskName,
    direction: 'download',
    useProxy: p.useProxy,
    maxConnections: p.inFlight,
    inactivityTimeoutSeconds: 120,
    timeouts: p.timeouts,
    signal: p.signal,
    onCreated: p.onCreated,
    warn: p.warn,
  });
  let digest: string;
  try {
    const inFlight = Math.max(1, Math.min(p.inFlight, opened.capabilities.maxReaders));
    const pieces = await piecesOf(opened.imageio, opened.capabilities.features.includes('extents'), p.size, p.signal);
    digest = await hashPieces(opened.imageio, pieces, inFlight, p.signal, p.onBytes);
  } finally {
    opened.imageio.close();
  }
  try {
    await finalizeTransfer(engine, { id: opened.transfer.id, diskId: p.diskId, diskName: p.diskName, direction: 'download' }, { timeouts: p.timeouts, signal: p.signal });
    p.onEnded(opened.transfer.id);
  } catch (err) {
    // the bytes are read and hashed; a download that ends badly changes nothing on the disk
    p.warn(`the verification download of disk ${p.diskName} did not end cleanly: ${(err as Error).message}`);
  }
  return digest;
}

async function piecesOf(imageio: ImageioClient, hasExtents: boolean, size: number, signal?: AbortSignal): Promise<Piece[]> {
  const extents = hasExtents ? await imageio.extents({ signal }) : [{ start: 0, length: size, zero: false }];
  const out: Piece[] = [];
  let pos = 0;
  for (const e of extents) {
    const start = Math.max(e.start, pos);
    const end = Math.min(e.start + e.length, size);
    if (start > pos) out.push(...split(pos, start - pos, false));
    if (end > start) out.push(...split(start, end - start, e.zero));
    pos = Math.max(pos, end);
    if (pos >= size) break;
  }
  if (pos < size) out.push(...split(pos, size - pos, false));
  return out;
}

function split(offset: number, length: number, zero: boolean): Piece[] {
  const out: Piece[] = [];
  for (let o = 0; o < length; o += PIECE) out.push({ offset: offset + o, length: Math.min(PIECE, length - o), zero });
  return out;
}

async function hashPieces(imageio: ImageioClient, pieces: Piece[], inFlight: number, signal: AbortSignal | undefined, onBytes?: (n: number) => void): Promise<string> {
  const hash = new StreamHash();
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const reads = new Map<number, Promise<Buffer>>();
  let launched = 0;
  try {
    for (let i = 0; i < pieces.length; i++) {
      while (reads.size < inFlight && launched < pieces.length) {
        const j = launched++;
        const pc = pieces[j] as Piece;
        if (pc.zero) continue;
        const r = imageio.read(pc.offset, pc.length, { signal: stop.signal });
        r.catch(() => undefined); // awaited in order below
        reads.set(j, r);
      }
      const pc = pieces[i] as Piece;
      const r = reads.get(i);
      if (r === undefined) {
        hash.zeros(pc.length);
      } else {
        reads.delete(i);
        await hash.update(await r);
      }
      onBytes?.(pc.length);
    }
    return await hash.digest();
  } finally {
    hash.close();
    if (reads.size > 0) stop.abort(new Error('verification stopped'));
    signal?.removeEventListener('abort', onAbort);
  }
}
