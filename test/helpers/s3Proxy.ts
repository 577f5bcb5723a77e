import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';

/**
 * A troublesome network in front of the real store: a loopback HTTP(S) proxy that forwards
 * requests unchanged to the lab's RGW (the Host header goes on as signed, so SigV4 still
 * verifies), and on demand answers 503 SlowDown (the body AWS and RGW send when they shed load),
 * cuts large request bodies mid-way (a network cut during an upload), or serves HTTPS with a
 * given certificate (a private CA's endpoint, for S3Config.caFile). Used to prove the store's
 * retries, aborts and TLS settings against real answers.
 */
export interface StoreProxy {
  endpoint: string;
  /** How many requests were answered 503 so far. */
  refused(): number;
  /** How many request bodies were cut so far. */
  cut(): number;
  /** Answer the next `n` requests with 503 SlowDown. */
  refuseNext(n: number): void;
  close(): Promise<void>;
}

export interface StoreProxyOptions {
  /** Answer the first N requests with 503 SlowDown. */
  refuseFirst?: number;
  /** Serve HTTPS with this key and certificate. */
  tls?: { key: Buffer; cert: Buffer };
  /** Requests with a body larger than `afterBytes`, from the (skip+1)-th such request on:
   *  forward `afterBytes` bytes, then drop both connections. */
  cutBodies?: { afterBytes: number; skip: number };
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function storeProxy(target: string, opts: StoreProxyOptions = {}): Promise<StoreProxy> {
  const to = new URL(target);
  let pending = opts.refuseFirst ?? 0;
  let refused = 0;
  let large = 0;
  let cut = 0;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (pending > 0) {
      pending--;
      refused++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(SLOW_DOWN) });
      res.end(SLOW_DOWN);
      return;
    }
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, timeout: 30_000 },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('timeout', () => up.destroy(new Error('upstream timed out')));
    up.on('error', () => res.destroy());
    const c = opts.cutBodies;
    if (c && Number(req.headers['content-length'] ?? 0) > c.afterBytes && large++ >= c.skip) {
      cut++;
      let sent = 0;
      req.on('data', (chunk: Buffer) => {
        if (sent >= c.afterBytes) return;
        const part = chunk.subarray(0, c.afterBytes - sent);
        sent += part.length;
        up.write(part);
        if (sent >= c.afterBytes) {
          up.destroy();
          req.socket.destroy();
        }
      });
      return;
    }
    req.pipe(up);
  };
  const server = opts.tls ? https.createServer(opts.tls, handle) : http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    refused: () => refused,
    cut: () => cut,
    refuseNext: (n) => {
      pending = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
