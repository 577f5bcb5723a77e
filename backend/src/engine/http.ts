import { promises as fs } from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AppError } from '../errors';
import { exchange, StaleSocketError } from './httpExchange';

/**
 * The engine's HTTP transport: one request, the whole body back as text, connection failures
 * turned into coded errors. Knows nothing of tokens or JSON. Uses node's http/https rather than
 * the global fetch because a private CA (the engine's own, reference §1.1) needs an https.Agent,
 * which Node 20's bundled fetch cannot take without the separate `undici` package.
 */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Aborting rejects with the signal's reason (the caller's timeout / abort error). */
  signal: AbortSignal;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TransportOptions {
  /** PEM file with the engine CA; default: the system trust store. */
  caFile?: string;
  /** Largest reply accepted; a VM's OVF is tens of KiB, lists of thousands of VMs a few MiB. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 64 << 20;

/** Socket-level failures that mean "the engine could not be reached". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
]);

export class EngineTransport {
  private agent: http.Agent | undefined;
  private agentPromise: Promise<http.Agent> | undefined;
  private readonly maxBody: number;

  constructor(private readonly opts: TransportOptions = {}) {
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const agent = await this.getAgent(req.url);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(req, agent);
      } catch (err) {
        // A kept-alive socket the engine (or a proxy) closed while idle fails the next request
        // with ECONNRESET before anything was processed; reads are safe to send once more.
        if (!(err instanceof StaleSocketError)) throw err;
        if (req.method !== 'GET' || attempt > 1 || req.signal.aborted) throw err.mapped;
      }
    }
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
    this.agentPromise = undefined;
  }

  private getAgent(url: URL): Promise<http.Agent> {
    if (this.agent) return Promise.resolve(this.agent);
    this.agentPromise ??= this.makeAgent(url).then((a) => (this.agent = a));
    return this.agentPromise;
  }

  private async makeAgent(url: URL): Promise<http.Agent> {
    if (url.protocol === 'http:') return new http.Agent({ keepAlive: true });
    let ca: Buffer | undefined;
    if (this.opts.caFile !== undefined) {
      try {
        ca = await fs.readFile(this.opts.caFile);
      } catch (err) {
        this.agentPromise = undefined;
        throw new AppError('ENGINE_TLS_ERROR', `cannot read the engine ca file ${this.opts.caFile}`, { cause: err });
      }
    }
    return new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
  }

  private async once(req: HttpRequest, agent: http.Agent): Promise<HttpResponse> {
    const r = await exchange({
      method: req.method,
      url: req.url,
      headers: req.headers,
      ...(req.body !== undefined ? { body: [Buffer.from(req.body, 'utf8')] } : {}),
      agent,
      signal: req.signal,
      maxBodyBytes: this.maxBody,
      tooLarge: () => new AppError('ENGINE_PROTOCOL_ERROR', `engine reply to ${req.method} ${req.url.pathname} exceeds ${this.maxBody} bytes`),
      socketError: (err) => mapSocketError(err, req.url.origin),
    });
    return { status: r.status, statusText: r.statusText, headers: r.headers, body: r.body.toString('utf8') };
  }
}

function mapSocketError(err: NodeJS.ErrnoException, target: string): AppError {
  const code = err.code ?? '';
  if (isTlsError(code)) {
    return new AppError('ENGINE_TLS_ERROR', `tls connection to engine ${target} failed (${code}); is the engine ca file right?`, {
      cause: err,
      details: { code },
    });
  }
  const why = UNREACHABLE_CODES.has(code) ? code : code || err.message;
  return new AppError('ENGINE_UNREACHABLE', `cannot reach engine ${target} - ${why}`, { cause: err, details: { code } });
}

function isTlsError(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'EPROTO'
  );
}
