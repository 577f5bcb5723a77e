import * as http from 'http';
import * as https from 'https';
import type { AppError } from '../errors';

/** A request that met a kept-alive socket the server had closed while idle (ECONNRESET before
 *  anything was processed): the caller decides whether it is safe to send once more. */
export class StaleSocketError extends Error {
  constructor(readonly mapped: AppError) {
    super(mapped.message);
  }
}

export interface Exchange {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** Sent in order; Content-Length is their total. */
  body?: Buffer[];
  agent: http.Agent;
  /** Aborting rejects with the signal's reason. */
  signal: AbortSignal;
  maxBodyBytes: number;
  /** The caller's coded errors: a reply over maxBodyBytes, a socket failure. */
  tooLarge(): AppError;
  socketError(err: NodeJS.ErrnoException): AppError;
}

export interface ExchangeResult {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP(S) exchange over node's http modules, shared by the engine's REST transport and the
 * imageio transport: abortable, socket failures mapped by the caller, the reply body bounded.
 */
export function exchange(x: Exchange): Promise<ExchangeResult> {
  const mod = x.url.protocol === 'http:' ? http : https;
  return new Promise<ExchangeResult>((resolve, reject) => {
    if (x.signal.aborted) {
      reject(x.signal.reason);
      return;
    }
    const headers: Record<string, string> = { ...x.headers };
    if (x.body !== undefined) headers['Content-Length'] = String(x.body.reduce((n, b) => n + b.length, 0));
    const r = mod.request(x.url, { method: x.method, headers, agent: x.agent });
    const onAbort = (): void => {
      r.destroy();
      reject(x.signal.reason);
    };
    x.signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => x.signal.removeEventListener('abort', onAbort);
    r.on('error', (err: NodeJS.ErrnoException) => {
      done();
      if (x.signal.aborted) {
        reject(x.signal.reason);
        return;
      }
      const mapped = x.socketError(err);
      reject(r.reusedSocket && err.code === 'ECONNRESET' ? new StaleSocketError(mapped) : mapped);
    });
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > x.maxBodyBytes) {
          done();
          res.destroy();
          reject(x.tooLarge());
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err: NodeJS.ErrnoException) => {
        done();
        reject(x.signal.aborted ? x.signal.reason : x.socketError(err));
      });
      res.on('end', () => {
        done();
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks, size) });
      });
    });
    for (const b of x.body ?? []) r.write(b);
    r.end();
  });
}
