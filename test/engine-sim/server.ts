import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import type { SimContext } from './context';
import { EngineFault, type FaultInjector } from './faults';
import { imageioRouter } from './imageio';
import { apiRootRouter } from './routes/api';
import { backupsRouter } from './routes/backups';
import { diskAttachmentsRouter } from './routes/diskAttachments';
import { disksRouter } from './routes/disks';
import { eventsRouter } from './routes/events';
import { imageTransfersRouter } from './routes/imagetransfers';
import { inventoryRouter } from './routes/inventory';
import { permissionsRouter } from './routes/permissions';
import { tagsRouter } from './routes/tags';
import { vmsRouter } from './routes/vms';
import { apiAuth, ssoRouter } from './sso';
import type { SimPki } from './tls';
import { send } from './wire';

/**
 * The engine's HTTP face: SSO and services under /ovirt-engine, the API under
 * /ovirt-engine/api (and /ovirt-engine/api/v4), and the imageio daemon's /images routes on the
 * same listener. A second listener plays the engine's imageio proxy (proxy_url).
 */
export function engineApp(ctx: SimContext, faults: FaultInjector, pki: SimPki | undefined): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(faults.middleware());

  app.use('/ovirt-engine', ssoRouter(ctx.tokens));
  app.get('/ovirt-engine/services/pki-resource', (req: Request, res: Response) => {
    if (!pki || req.query['resource'] !== 'ca-certificate') {
      res.status(404).end();
      return;
    }
    res.type('application/x-x509-ca-cert').send(readFileSync(pki.caFile));
  });

  const api = express.Router();
  api.use(express.json({ type: (req) => /json/i.test(String(req.headers['content-type'] ?? '')), limit: '64mb' }));
  api.use(express.text({ type: (req) => /xml/i.test(String(req.headers['content-type'] ?? '')), limit: '64mb' }));
  api.use(apiAuth(ctx.tokens));
  api.use((req: Request, res: Response, next: NextFunction) => {
    const cid = req.get('correlation-id');
    if (cid) res.set('Correlation-Id', cid);
    next();
  });
  api.use(apiRootRouter(ctx));
  api.use(vmsRouter(ctx));
  api.use(backupsRouter(ctx));
  api.use(diskAttachmentsRouter(ctx));
  api.use(disksRouter(ctx));
  api.use(inventoryRouter(ctx));
  api.use(permissionsRouter(ctx));
  api.use(tagsRouter(ctx));
  api.use(eventsRouter(ctx));
  api.use(imageTransfersRouter(ctx));
  api.use((_req: Request, res: Response) => {
    res.status(404).end(); // JAX-RS: no resource at this path
  });
  app.use(['/ovirt-engine/api/v4', '/ovirt-engine/api'], api);

  app.use(imageioRouter(ctx.transfers));
  app.use(errorHandler);
  return app;
}

/** The imageio proxy: only the /images routes. */
export function proxyApp(ctx: SimContext, faults: FaultInjector): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(faults.middleware());
  app.use(imageioRouter(ctx.transfers));
  app.use(errorHandler);
  return app;
}

function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof EngineFault) {
    if (!err.body) {
      res.status(err.status).end();
      return;
    }
    send(req, res, err.status, 'fault', { reason: err.reason, detail: err.detail });
    return;
  }
  const e = err as { status?: number; type?: string; message?: string };
  if (e.type === 'entity.parse.failed' || e.status === 400) {
    send(req, res, 400, 'fault', { reason: 'Operation Failed', detail: `Malformed request body: ${e.message ?? ''}` });
    return;
  }
  send(req, res, 500, 'fault', { reason: 'Operation Failed', detail: e.message ?? String(err) });
}

export interface Listener {
  server: http.Server;
  port: number;
}

export async function listen(app: Express, port: number, pki: SimPki | undefined): Promise<Listener> {
  const server = pki ? https.createServer({ cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile) }, app) : http.createServer(app);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export async function closeListener(l: Listener): Promise<void> {
  const closed = new Promise<void>((resolve) => l.server.close(() => resolve()));
  l.server.closeAllConnections();
  await closed;
}
