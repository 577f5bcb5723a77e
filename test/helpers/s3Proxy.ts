import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';

/**
 * A throttling store in front of the real one: a loopback HTTP proxy that answers the next N
 * requests with 503 SlowDown (the body AWS and RGW send when they shed load) and forwards every
 * other request unchanged to the lab's RGW. The Host header is forwarded as signed, so SigV4
 * still verifies. Used to prove the store's retries against real answers; with `tls` it serves
 * HTTPS with that certificate (a private CA's endpoint, for S3Config.caFile).
 */
export interface SlowDownProxy {
  endpoint: string;
  /** How many requests were answered 503 so far. */
  refused(): number;
  /** Answer the next `n` requests with 503 SlowDown. */
  refuseNext(n: number): void;
  close(): Promise<void>;
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function slowDownProxy(target: string, refuseFirst: number, tls?: { key: Buffer; cert: Buffer }): Promise<SlowDownProxy> {
  const to = new URL(target);
  let pending = refuseFirst;
  let refused = 0;
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
    req.pipe(up);
  };
  const server = tls ? https.createServer(tls, handle) : http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    refused: () => refused,
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
