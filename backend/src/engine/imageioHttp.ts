import { promises as fs } from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AppError } from '../errors';
import { exchange, StaleSocketError } from './httpExchange';

/**
 * The transport under the imageio client: one binary HTTP exchange with the daemon or proxy
 * (reference §6), keep-alive sockets up to the writers allowed, socket failures as coded
 * errors. Separate from the engine's transport: bodies are bytes, not JSON text, and the
 * methods are imageio's (OPTIONS, PATCH).
 */
export type ImageioMethod = 'OPTIONS' | 'GET' | 'PUT' | 'PATCH';

export interface ImageioHttpRequest {
  method: ImageioMethod;
  url: URL;
  headers: Record<string, string>;
  /** Sent in order; Content-Length is their total. */
  body?: Buffer[];
  /** Aborting rejects with the signal's reason. */
  signal: AbortSignal;
  /** Largest reply body accepted. */
  maxBodyBytes: number;
  /** The reply body goes into this buffer when it fits (a reader recycling its buffers). */
  into?: Buffer;
}

export interface ImageioHttpResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class ImageioTransport {
  private agentPromise: Promise<http.Agent> | undefined;

  constructor(private readonly opts: { caFile?: string; maxSockets: number }) {}

  /** Every imageio operation is idempotent (a PUT rewrites the same range), so a request that
   *  met a kept-alive socket the server had closed is sent once more. */
  async send(req: ImageioHttpRequest): Promise<ImageioHttpResponse> {
    const agent = await this.agent(req.url);
    try {
      return await this.once(req, agent);
    } catch (err) {
      if (!(err instanceof StaleSocketError) || req.signal.aborted) throw err instanceof StaleSocketError ? err.mapped : err;
      return this.once(req, agent).catch((e: unknown) => {
        throw e instanceof StaleSocketError ? e.mapped : e;
      });
    }
  }

  close(): void {
    const p = this.agentPromise;
    this.agentPromise = undefined;
    void p?.then((a) => a.destroy()).catch(() => undefined);
  }

  private agent(url: URL): Promise<http.Agent> {
    this.agentPromise ??= this.makeAgent(url).catch((err: unknown) => {
      this.agentPromise = undefined;
      throw err;
    });
    return this.agentPromise;
  }

  private async makeAgent(url: URL): Promise<http.Agent> {
    const common = { keepAlive: true, maxSockets: this.opts.maxSockets };
    if (url.protocol === 'http:') return new http.Agent(common);
    let ca: Buffer | undefined;
    if (this.opts.caFile !== undefined) {
      try {
        ca = await fs.readFile(this.opts.caFile);
      } catch (err) {
        throw new AppError('IMAGEIO_UNREACHABLE', `cannot read the engine ca file ${this.opts.caFile} for imageio`, { cause: err });
      }
    }
    return new https.Agent({ ...common, ...(ca ? { ca } : {}) });
  }

  private once(req: ImageioHttpRequest, agent: http.Agent): Promise<ImageioHttpResponse> {
    return exchange({
      ...req,
      agent,
      tooLarge: () => new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio ${req.method} reply exceeds ${req.maxBodyBytes} bytes`),
      socketError: (err) => mapSocketError(err, req.url.origin),
      // imageio closing the connection mid-range: the data is incomplete, not the network down
      truncated: (got, expected) =>
        new AppError('IMAGEIO_PROTOCOL_ERROR', `imageio ${req.method} reply from ${req.url.origin} ended after ${got} of ${expected} bytes`, { details: { got, expected } }),
    });
  }
}

function mapSocketError(err: NodeJS.ErrnoException, origin: string): AppError {
  const code = err.code ?? '';
  const tls = code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT') || code === 'EPROTO';
  const why = tls ? `tls failed (${code}); is the engine ca file right?` : code || err.message;
  return new AppError('IMAGEIO_UNREACHABLE', `cannot reach imageio ${origin} - ${why}`, { cause: err, details: { code } });
}
