import { readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import type { Express } from 'express';
import type { EventHub } from './events';

export interface ListenOptions {
  host: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
}

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/** HTTP(S) listener carrying the app and the WebSocket upgrades. */
export async function listen(app: Express, hub: EventHub, opts: ListenOptions): Promise<ApiServer> {
  const server =
    opts.tlsCert && opts.tlsKey ? https.createServer({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) }, app) : http.createServer(app);
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 10_000;
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${opts.tlsCert ? 'https' : 'http'}://${host}:${addr.port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        hub.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
