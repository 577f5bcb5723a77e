import { AppError } from '../errors';
import { withTimeout } from '../util/abort';
import { tokenSource, type EngineAuth, type TokenSource } from './auth';
import { faultError } from './faults';
import { EngineTransport, type HttpResponse } from './http';
import { isObject } from './parse/fields';

/** Every call takes these; `timeoutMs` bounds the whole call, a re-login included. */
export interface EngineCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export type QueryValue = string | number | boolean | undefined;

export interface EngineRequest extends EngineCallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below the API root, e.g. `/vms/5e2f/diskattachments`; ids already encoded (see `seg`). */
  path: string;
  query?: Record<string, QueryValue>;
  /** Serialized as JSON; booleans and numbers are sent as strings, as the engine sends them. */
  body?: unknown;
  /** This request's `Filter`, sent even when false; default the connection's setting. */
  filter?: boolean;
}

export interface ConnectionOptions {
  /** `https://engine.example/ovirt-engine`, as WebAdmin's engineBaseUrl() gives it. */
  baseUrl: string;
  caFile?: string;
  timeoutMs?: number;
  auth: EngineAuth;
  /** Send `Filter: true` (permission-filtered, user-level view). Default: on for bearer tokens. */
  filter?: boolean;
  userAgent?: string;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * One authenticated JSON exchange with the engine's REST API: headers, the token (a new login
 * and one retry on 401 for the service account), faults turned into coded errors, the reply
 * parsed as JSON. Knows nothing of the entities.
 */
export class EngineConnection {
  readonly baseUrl: string;
  readonly apiRoot: URL;
  /**
   * Send `Filter: true`. Settable once the caller knows who the token belongs to: an engine admin
   * reads unfiltered, as WebAdmin and the VM Portal do (see EngineClient.isEngineAdmin).
   */
  filter: boolean;
  readonly timeoutMs: number;
  private readonly transport: EngineTransport;
  private readonly tokens: TokenSource;
  private readonly userAgent: string;

  constructor(opts: ConnectionOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.apiRoot = new URL(`${this.baseUrl}/api`);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.filter = opts.filter ?? opts.auth.kind === 'bearer';
    this.userAgent = opts.userAgent ?? 'olvm-backup';
    this.transport = new EngineTransport({ caFile: opts.caFile });
    this.tokens = tokenSource(opts.auth, this.transport, this.baseUrl, this.timeoutMs);
  }

  /** Who the calls run as, for messages: the service account's user name, or "the portal user". */
  get who(): string {
    return this.tokens.who;
  }

  async request(req: EngineRequest): Promise<unknown> {
    const url = this.url(req.path, req.query);
    const what = `engine ${req.method} ${url.pathname}`;
    return withTimeout(
      what,
      req.timeoutMs ?? this.timeoutMs,
      req.signal,
      async (signal) => {
        let token = await this.tokens.token(signal);
        let res = await this.send(req, url, token, signal);
        if (res.status === 401 && this.tokens.canRenew) {
          token = await this.tokens.renew(token, signal);
          res = await this.send(req, url, token, signal);
          if (res.status === 401) {
            throw faultError(res, { method: req.method, path: url.pathname }, { what: `${what} as ${this.who} (after a new login)` });
          }
        }
        return this.reply(res, req.method, url);
      },
      { timeout: 'ENGINE_TIMEOUT', aborted: 'ENGINE_ABORTED' },
    );
  }

  /**
   * Revokes the service account's token and closes kept-alive sockets. Best effort: a logout the
   * engine refuses or never answers is not an error (the token dies with its idle session
   * anyway), so close() can sit in a `finally` without masking the error that got there.
   */
  async close(opts: EngineCallOptions = {}): Promise<void> {
    try {
      await withTimeout('engine logout', opts.timeoutMs ?? 10_000, opts.signal, (s) => this.tokens.close(s), {
        timeout: 'ENGINE_TIMEOUT',
        aborted: 'ENGINE_ABORTED',
      });
    } catch (err) {
      if (!(err instanceof AppError && err.code.startsWith('ENGINE_'))) throw err;
    } finally {
      this.transport.close();
    }
  }

  url(path: string, query?: Record<string, QueryValue>): URL {
    const url = new URL(this.apiRoot.href + path);
    const parts: string[] = [];
    for (const [k, v] of Object.entries(query ?? {})) {
      // encodeURIComponent, not URLSearchParams: a search's spaces must be %20, not '+'.
      if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
    }
    url.search = parts.join('&');
    return url;
  }

  private send(req: EngineRequest, url: URL, token: string, signal: AbortSignal): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      Version: '4',
      Accept: 'application/json',
      Authorization: `Bearer ${token}`,
      'User-Agent': this.userAgent,
    };
    const filter = req.filter ?? this.filter;
    if (filter) headers.Filter = 'true';
    else if (req.filter === false) headers.Filter = 'false';
    let body: string | undefined;
    if (req.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(req.body, (_k, v: unknown) => (typeof v === 'boolean' || typeof v === 'number' ? String(v) : v));
    } else if (req.method === 'POST' || req.method === 'PUT') {
      headers['Content-Type'] = 'application/json';
      body = '{}';
    }
    return this.transport.send({ method: req.method, url, headers, body, signal });
  }

  private reply(res: HttpResponse, method: string, url: URL): unknown {
    const request = { method, path: url.pathname };
    if (res.status === 401) {
      throw faultError(res, request, { what: `engine ${method} ${url.pathname} as ${this.who}` });
    }
    if (res.status < 200 || res.status >= 300) throw faultError(res, request);
    if (res.body.trim() === '') return undefined;
    let json: unknown;
    try {
      json = JSON.parse(res.body);
    } catch (err) {
      const type = String(res.headers['content-type'] ?? 'no content type');
      throw new AppError('ENGINE_PROTOCOL_ERROR', `engine ${method} ${url.pathname} answered ${res.status} with ${type}, not json`, {
        cause: err,
        details: { status: res.status, method, path: url.pathname },
      });
    }
    // A failed action can come back with a 2xx status and `status: failed` in its body.
    if (isObject(json) && json.status === 'failed' && isObject(json.fault)) throw faultError(res, request);
    return json;
  }
}

/** Accepts `https://fqdn/ovirt-engine`, with or without a trailing slash or `/api`. */
export function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `engine url '${raw}' is not a url`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AppError('INVALID_ARGUMENT', `engine url '${raw}' must be http(s)`);
  }
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '').replace(/\/api$/, '');
}

/** One path segment (an id or name) made safe for a URL. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}
