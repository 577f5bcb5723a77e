/**
 * An imageio ticket of an engine backup download as a DiskSource (diskSource.ts), so the engine
 * method copies through the same code as the QMP method. imageio's extents (reference §6.3) are
 * mapped onto NBD's: `context=zero` → `base:allocation` (zero → NBD_STATE_ZERO, hole →
 * NBD_STATE_HOLE), `context=dirty` → IMAGEIO_DIRTY_CONTEXT (dirty → NBD_STATE_DIRTY). While the
 * copy waits on the repository, a request now and then keeps the ticket from going idle past
 * its inactivity timeout (reference §5.3).
 */
import { AppError } from '../errors';
import type { ImageioClient, ImageioExtent } from '../engine';
import { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, type Extent } from '../nbd';
import type { DiskSource } from './diskSource';

/** The context name copyDisk is given for an incremental disk of the engine method. */
export const IMAGEIO_DIRTY_CONTEXT = 'imageio:dirty';
const ALLOCATION = 'base:allocation';

/** imageio extents → NBD extents of `kind`, clipped to [offset, offset+length), runs merged. */
export function imageioExtentsToNbd(extents: readonly ImageioExtent[], kind: 'allocation' | 'dirty', offset: number, length: number): Extent[] {
  const end = offset + length;
  const out: Extent[] = [];
  for (const e of extents) {
    const from = Math.max(e.start, offset);
    const to = Math.min(e.start + e.length, end);
    if (to <= from) continue;
    const flags = kind === 'dirty' ? (e.dirty === true ? NBD_STATE_DIRTY : 0) : (e.zero ? NBD_STATE_ZERO : 0) | (e.hole ? NBD_STATE_HOLE : 0);
    const last = out[out.length - 1];
    if (last && last.flags === flags && last.offset + last.length === from) last.length += to - from;
    else out.push({ offset: from, length: to - from, flags });
  }
  return out;
}

/** The size an extent list describes; its runs must follow each other from 0. */
export function extentsSize(extents: readonly ImageioExtent[]): number {
  let pos = 0;
  for (const e of extents) {
    if (e.start !== pos || e.length < 0) throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio extents are not contiguous at ${pos} (next starts at ${e.start})`);
    pos += e.length;
  }
  return pos;
}

export class ImageioSource implements DiskSource {
  private lastActivity = Date.now();
  private inFlight = 0;
  private reading = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly client: ImageioClient,
    readonly size: number,
    /** Parallel reads the ticket allows (OPTIONS max_readers). */
    readonly maxReaders: number,
    private readonly zeroMap: ImageioExtent[],
    keepAliveMs: number,
  ) {
    if (keepAliveMs > 0) {
      this.timer = setInterval(() => this.keepAlive(keepAliveMs), Math.max(250, keepAliveMs / 2));
      this.timer.unref();
    }
  }

  /**
   * OPTIONS first (reference §6.1), then the zero map, which also gives the size. `expectedSize`
   * (the engine's provisioned size) guards against reading the wrong image.
   */
  static async open(client: ImageioClient, o: { expectedSize?: number; keepAliveMs?: number; signal?: AbortSignal }): Promise<ImageioSource> {
    const call = o.signal ? { signal: o.signal } : {};
    const caps = await client.options(call);
    if (!caps.allow.includes('GET') && caps.allow.length > 0) throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio at ${client.origin} does not allow GET on this ticket`);
    const zeroMap = caps.features.includes('extents') || caps.features.length === 0 ? await client.extents({ context: 'zero', ...call }) : [];
    const size = zeroMap.length > 0 ? extentsSize(zeroMap) : (o.expectedSize ?? 0);
    if (o.expectedSize !== undefined && size !== o.expectedSize) {
      throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio at ${client.origin} serves ${size} bytes where the engine says the disk has ${o.expectedSize}`);
    }
    // no extents at all (an old daemon): everything is data
    const map = zeroMap.length > 0 ? zeroMap : [{ start: 0, length: size, zero: false, hole: false, dirty: undefined }];
    return new ImageioSource(client, size, caps.maxReaders, map, o.keepAliveMs ?? 20_000);
  }

  async extents(context: string, offset = 0, length = this.size - offset, opts: { signal?: AbortSignal } = {}): Promise<Extent[]> {
    if (context === ALLOCATION) return imageioExtentsToNbd(this.zeroMap, 'allocation', offset, length);
    if (context !== IMAGEIO_DIRTY_CONTEXT) throw new AppError('INVALID_ARGUMENT', `imageio has no extents context ${context}`);
    const dirty = await this.track(() => this.client.extents({ context: 'dirty', ...(opts.signal ? { signal: opts.signal } : {}) }));
    if (extentsSize(dirty) !== this.size) throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio dirty extents cover ${extentsSize(dirty)} bytes of ${this.size}`);
    return imageioExtentsToNbd(dirty, 'dirty', offset, length);
  }

  /** At most `maxReaders` reads are in flight at imageio; more callers wait their turn. */
  async read(offset: number, length: number, opts: { signal?: AbortSignal; into?: Buffer } = {}): Promise<Buffer> {
    opts.signal?.throwIfAborted();
    while (this.reading >= this.maxReaders) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (opts.signal?.aborted) {
        this.waiting.shift()?.(); // pass the turn on: the next waiter must see the abort too
        throw opts.signal.reason;
      }
    }
    this.reading++;
    try {
      return await this.track(() => this.client.read(offset, length, opts));
    } finally {
      this.reading--;
      this.waiting.shift()?.();
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.client.close();
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
      this.lastActivity = Date.now();
    }
  }

  /** OPTIONS counts as client activity on the ticket (reference §6.1); failures are the copy's
   *  to find. */
  private keepAlive(idleMs: number): void {
    if (this.inFlight > 0 || Date.now() - this.lastActivity < idleMs) return;
    void this.track(() => this.client.options({ timeoutMs: 10_000 })).catch(() => undefined);
  }
}
