import express, { type Express } from 'express';
import { AppError, describeError, isAppError } from '../errors';
import type { Principal } from './auth';
import type { ApiDeps } from './deps';
import { Downloads } from './downloads';
import { errorHandler, sendError } from './httpErrors';
import { HttpCounters, renderMetrics } from './metrics';
import { cors, requireUser, route, securityHeaders } from './middleware';
import { jobsRoutes } from './routes/jobs';
import { pointsRoutes } from './routes/points';
import { policiesRoutes } from './routes/policies';
import { restoreRoutes } from './routes/restore';
import { publicRoutes, systemRoutes } from './routes/system';
import { vmsRoutes } from './routes/vms';
import { auditRoutes } from './routes/audit';
import { verifyRoutes } from './routes/verify';
import { bootCheckRoutes } from './routes/bootCheck';
import { deletedVmsRoutes } from './routes/deletedVms';
import { filesRoutes } from './routes/files';

/** Bodies are small commands; anything bigger is a mistake or an attack. */
const BODY_LIMIT = '16kb';

/** The HTTP side of the service: `/api/v1` (JSON) and `/metrics` (Prometheus). */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  const http = new HttpCounters();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple'); // no nested objects from `a[b]=c`
  app.use(http.middleware());
  app.use(securityHeaders(deps.tls));
  app.use(cors(deps.corsOrigins));

  app.get(
    '/metrics',
    route(async (req, res) => {
      await deps.scrape.require(req);
      res.type('text/plain; version=0.0.4').send(renderMetrics(deps.catalog, http, Math.round((Date.now() - deps.startedAt.getTime()) / 1000)));
    }),
  );

  const api = express.Router();
  api.use(express.json({ limit: BODY_LIMIT, strict: true }));
  api.use((req, _res, next) => {
    // a body that is not JSON would silently be ignored: say so instead
    if (req.method === 'POST' && Number(req.headers['content-length'] ?? 0) > 0 && !req.is('application/json')) {
      next(new AppError('BAD_REQUEST', 'the request body must be JSON (Content-Type: application/json)'));
      return;
    }
    next();
  });
  const downloads = new Downloads(deps);
  api.use(publicRoutes(deps));
  api.use(downloads.serveRoutes());
  api.use(
    requireUser(deps.auth, (tokenKey, err, req) =>
      deps.serviceAudit?.authFailure({ tokenKey, code: err.code, message: err.message, method: req.method, path: req.baseUrl + req.path, remote: req.socket.remoteAddress ?? null }),
    ),
  );
  api.use(systemRoutes(deps));
  api.use(vmsRoutes(deps));
  api.use(jobsRoutes(deps));
  api.use(pointsRoutes(deps));
  api.use(restoreRoutes(deps));
  api.use(policiesRoutes(deps));
  api.use(verifyRoutes(deps));
  api.use(bootCheckRoutes(deps));
  api.use(filesRoutes(deps));
  api.use(auditRoutes(deps));
  api.use(deletedVmsRoutes(deps));
  api.use(downloads.issueRoutes());
  app.use('/api/v1', api);

  app.use((req, res) => sendError(res, 404, 'NOT_FOUND', `no route ${req.method} ${req.path}`));
  app.use(
    errorHandler((err, status, req, res) => {
      if (status >= 500) deps.log.error({ err: describeError(err) }, 'request failed');
      // a refused action is in the audit log, with who tried it (a hostile user's attempts are
      // what an admin most needs to see)
      const p = res.locals['principal'] as Principal | undefined;
      if (isAppError(err, 'FORBIDDEN') && p) deps.serviceAudit?.accessDenied({ actor: p.userName, reason: err.message, method: req.method, path: req.baseUrl + req.path });
    }),
  );
  return app;
}
