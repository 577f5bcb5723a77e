import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import { ImageioTransport, type ImageioHttpResponse, type ImageioMethod } from './imageioHttp';

/** What `OPTIONS /images/{ticket}` says the ticket allows (reference §6.1). */
export interface ImageioCapabilities {
  /** Methods, from the `Allow` header. */
  allow: string[];
  /** e.g. checksum, extents, flush, zero. */
  features: string[];
  maxReaders: number;
  maxWriters: number;
}

/** `GET /images/{ticket}/extents` item (reference §6.3). */
export interface ImageioExtent {
  start: number;
  length: number;
  zero: boolean;
  /** qcow2 without backing only: unallocated. */
  hole: boolean;
  /** context=dirty only. */
  dirty: boolean | undefined;
}

export interface ImageioCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ImageioClientOptions {
  /** The transfer's `transfer_url` or `proxy_url`: `https://host:54322/images/<ticket>`. */
  url: string;
  /** PEM of the engine CA, which signs the daemons' and the proxy's certificates. */
  caFile?: string;
  /** Per request; default 60 s (imageio's own idle limit). */
  timeoutMs?: number;
  /** Connections kept to the server; default 4. Writers must stay at or under max_writers. */
  maxConnections?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_JSON_REPLY = 16 << 20;

/**
 * The ovirt-imageio HTTP API of one transfer (reference §6): OPTIONS first, ranged GET, PUT with
 * Content-Range, PATCH zero / flush, extents. The ticket in the URL is the credential, so no
 * message or error detail carries the URL's path: errors name the method and the offset.
 */
export class ImageioClient {
  readonly url: URL;
  readonly timeoutMs: number;
  private readonly transport: ImageioTransport;

  constructor(opts: ImageioClientOptions) {
    try {
      this.url = new URL(opts.url);
    } catch (err) {
      throw new AppError('INVALID_ARGUMENT', 'imageio url is not a url', { cause: err });
    }
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.transport = new ImageioTransport({ caFile: opts.caFile, maxSockets: opts.maxConnections ?? 4 });
  }

  /** Where requests go, for messages: scheme, host and port, never the ticket. */
  get origin(): string {
    return this.url.origin;
  }

  /** Capabilities; an old server without OPTIONS (405, or 204 from an old proxy) gets only GET/PUT. */
  async options(opts: ImageioCallOptions = {}): Promise<ImageioCapabilities> {
    const res = await this.call('imageio OPTIONS', 'OPTIONS', this.url, {}, undefined, MAX_JSON_REPLY, opts, [200, 204, 405]);
    if (res.status !== 200) return { allow: ['GET', 'PUT'], features: [], maxReaders: 1, maxWriters: 1 };
    const json = parseJson(res, 'imageio OPTIONS');
    const allow = String(res.headers.allow ?? '')
      .split(',')
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s !== '');
    const features = Array.isArray(json.features) ? json.features.filter((f): f is string => typeof f === 'string') : [];
    return { allow, features, maxReaders: positiveInt(json.max_readers) ?? 1, maxWriters: positiveInt(json.max_writers) ?? 1 };
  }

  /** Writes `data` at `offset`. flush=false (`flush=n`) leaves it to one final flush(). */
  async put(offset: number, data: Buffer | Buffer[], opts: ImageioCallOptions & { flush?: boolean } = {}): Promise<void> {
    const body = Array.isArray(data) ? data : [data];
    const length = body.reduce((n, b) => n + b.length, 0);
    if (length === 0) return;
    const url = new URL(this.url.href);
    url.search = `flush=${opts.flush ? 'y' : 'n'}`;
    const headers = { 'Content-Range': `bytes ${offset}-${offset + length - 1}/*`, 'Content-Type': 'application/octet-stream' };
    await this.call('imageio PUT', 'PUT', url, headers, body, MAX_JSON_REPLY, opts, [200, 204], { offset, length });
  }

  /** `PATCH {"op": "zero"}`: the range reads as zeros afterwards, without sending them. */
  async zero(offset: number, size: number, opts: ImageioCallOptions & { flush?: boolean } = {}): Promise<void> {
    if (size === 0) return;
    await this.patch('imageio PATCH zero', { op: 'zero', offset, size, flush: opts.flush ?? false }, opts, { offset, length: size });
  }

  /** `PATCH {"op": "flush"}`: everything written so far is on stable storage. */
  async flush(opts: ImageioCallOptions = {}): Promise<void> {
    await this.patch('imageio PATCH flush', { op: 'flush' }, opts, {});
  }

  /** `GET` with `Range`: exactly `length` bytes at `offset`; into `opts.into` when given and
   *  large enough (the returned buffer is then a view of it). */
  async read(offset: number, length: number, opts: ImageioCallOptions & { into?: Buffer } = {}): Promise<Buffer> {
    const headers = { Range: `bytes=${offset}-${offset + length - 1}` };
    const res = await this.call('imageio GET', 'GET', this.url, headers, undefined, length, opts, [200, 206], { offset, length }, opts.into);
    if (res.body.length !== length) {
      throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio GET answered ${res.body.length} bytes for a range of ${length}`, { details: { offset, length } });
    }
    return res.body;
  }

  /** `GET .../extents?context=zero|dirty`. */
  async extents(opts: ImageioCallOptions & { context?: 'zero' | 'dirty' } = {}): Promise<ImageioExtent[]> {
    const url = new URL(`${this.url.href.replace(/\/+$/, '')}/extents`);
    url.search = `context=${opts.context ?? 'zero'}`;
    const res = await this.call('imageio GET extents', 'GET', url, {}, undefined, MAX_JSON_REPLY, opts, [200]);
    let json: unknown;
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch (err) {
      throw new AppError('IMAGEIO_PROTOCOL_ERROR', 'imageio extents reply is not json', { cause: err });
    }
    if (!Array.isArray(json)) throw new AppError('IMAGEIO_PROTOCOL_ERROR', 'imageio extents reply is not a list');
    return json.map((e: unknown, i) => {
      const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
      const start = o.start;
      const length = o.length;
      if (typeof start !== 'number' || typeof length !== 'number') throw new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio extent ${i} has no start/length`);
      return { start, length, zero: o.zero === true, hole: o.hole === true, dirty: typeof o.dirty === 'boolean' ? o.dirty : undefined };
    });
  }

  close(): void {
    this.transport.close();
  }

  private async patch(what: string, msg: Record<string, unknown>, opts: ImageioCallOptions, where: { offset?: number; length?: number }): Promise<void> {
    const body = [Buffer.from(JSON.stringify(msg))];
    await this.call(what, 'PATCH', this.url, { 'Content-Type': 'application/json' }, body, MAX_JSON_REPLY, opts, [200, 204], where);
  }

  private call(
    what: string,
    method: ImageioMethod,
    url: URL,
    headers: Record<string, string>,
    body: Buffer[] | undefined,
    maxBodyBytes: number,
    opts: ImageioCallOptions,
    ok: number[],
    where: { offset?: number; length?: number } = {},
    into?: Buffer,
  ): Promise<ImageioHttpResponse> {
    return withTimeout(
      what,
      opts.timeoutMs ?? this.timeoutMs,
      opts.signal,
      async (signal) => {
        const res = await this.transport.send({ method, url, headers, body, signal, maxBodyBytes: Math.max(maxBodyBytes, 64 << 10), ...(into ? { into } : {}) });
        if (!ok.includes(res.status)) throw httpError(what, res, where);
        return res;
      },
      { timeout: 'IMAGEIO_TIMEOUT', aborted: 'IMAGEIO_ABORTED' },
    );
  }
}

/** imageio errors are plain text (reference §6.7); 403 means the ticket is gone or forbids it. */
function httpError(what: string, res: ImageioHttpResponse, where: { offset?: number; length?: number }): AppError {
  const text = res.body.toString('utf8', 0, Math.min(res.body.length, 400)).replace(/\s+/g, ' ').trim();
  const said = text || res.statusText || `http ${res.status}`;
  const hint = res.status === 403 ? ' (ticket expired, cancelled or not allowed this operation)' : '';
  return new AppError('IMAGEIO_HTTP_ERROR', `${what} failed with ${res.status}${hint} - ${redactTickets(said)}`, {
    details: { status: res.status, ...where },
  });
}

/** imageio names the ticket in some messages ("No such ticket <id>"); it is a credential. */
function redactTickets(s: string): string {
  return s.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<ticket>');
}

function parseJson(res: ImageioHttpResponse, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(res.body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (err) {
    throw new AppError('IMAGEIO_PROTOCOL_ERROR', `${what} reply is not json`, { cause: err });
  }
  throw new AppError('IMAGEIO_PROTOCOL_ERROR', `${what} reply is not a json object`);
}

function positiveInt(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}
