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
  /** A reply whose body ended before its Content-Length (the server closed mid-body); absent:
   *  that is a socket error like any other. */
  truncated?(got: number, expected: number): AppError;
  /** The body goes into this buffer when its Content-Length fits (no fresh buffer per reply). */
  into?: Buffer;
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
      const declared = Number(res.headers['content-length']);
      const expected = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
      const into = x.into && expected !== undefined && expected <= x.into.length ? x.into : undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      const fail = (err: unknown): void => {
        if (over) return;
        over = true;
        done();
        reject(err);
      };
      res.on('data', (c: Buffer) => {
        if (over) return;
        if (size + c.length > x.maxBodyBytes) {
          res.destroy();
          fail(x.tooLarge());
          return;
        }
        if (into && size + c.length <= into.length) c.copy(into, size);
        else chunks.push(c);
        size += c.length;
      });
      const cut = (): AppError | undefined => (x.truncated && expected !== undefined && size < expected ? x.truncated(size, expected) : undefined);
      res.on('error', (err: NodeJS.ErrnoException) => {
        fail(x.signal.aborted ? x.signal.reason : (cut() ?? x.socketError(err)));
      });
      res.on('close', () => {
        // a body cut short may end in 'close' alone, without 'error' or 'end'
        if (!res.complete) fail(x.signal.aborted ? x.signal.reason : (cut() ?? x.socketError(Object.assign(new Error('connection closed mid-reply'), { code: 'ECONNRESET' }))));
      });
      res.on('end', () => {
        if (over) return;
        const short = cut();
        if (short) {
          fail(short);
          return;
        }
        over = true;
        done();
        const body = into ? into.subarray(0, size) : Buffer.concat(chunks, size);
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body });
      });
    });
    for (const b of x.body ?? []) r.write(b);
    r.end();
  });
}
