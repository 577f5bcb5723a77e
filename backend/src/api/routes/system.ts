import { promises as fs } from 'fs';
import { Router } from 'express';
import { describeError } from '../../errors';
import type { Health, HealthStatus, RepositoryStatus, WhoAmI } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { openApiDocument } from '../openapi';

/** Routes anyone may call: the health check (load balancers, systemd, the plugin's "is the
 *  service there" check: up or down only, unless the caller shows a scrape token or a portal
 *  user's token) and the API description. */
export function publicRoutes(deps: ApiDeps): Router {
  const r = Router();
  const engineCheck = cachedCheck(30_000, async () => {
    await deps.serviceEngine.getApiInfo({ timeoutMs: 5_000 });
    return 'reachable';
  });

  r.get(
    '/health',
    route(async (req, res) => {
      const detailed = await deps.scrape.allows(req, 'any-user');
      const checks: Health['checks'] = [];
      try {
        deps.catalog.ping();
        checks.push({ name: 'catalog', ok: true, message: 'ok' });
      } catch (err) {
        checks.push({ name: 'catalog', ok: false, message: describeError(err) });
      }
      try {
        await fs.access(deps.repositoryPath);
        // on object storage: where its durable copy is, and that this service is its writer
        const remote = deps.repository.remote;
        checks.push({ name: 'repository', ok: true, message: remote ? `ok: ${remote.location} (${remote.mode}, cache ${deps.repositoryPath})` : 'ok' });
      } catch (err) {
        checks.push({ name: 'repository', ok: false, message: describeError(err) });
      }
      checks.push({ name: 'engine', ...(await engineCheck()) });
      const status = checks.every((c) => c.ok) ? 'ok' : 'degraded';
      // the version, the uptime and what failed help an attacker as much as an operator
      const body: Health | HealthStatus = detailed ? { status, version: deps.version, uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 1000), checks } : { status };
      res.status(status === 'ok' ? 200 : 503).json(body);
    }),
  );

  r.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument(deps.version));
  });
  return r;
}

export function systemRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.get(
    '/whoami',
    route(async (_req, res) => {
      const p = principalOf(res);
      const body: WhoAmI = { userId: p.userId, userName: p.userName, backupAdmin: await deps.permits.isBackupAdmin(p) };
      res.json(body);
    }),
  );

  r.get(
    '/repository',
    route(async (_req, res) => {
      const t = deps.catalog.repositoryTotals();
      const unique = t.chunkCount * t.chunkSize;
      const body: RepositoryStatus = {
        chunkSize: t.chunkSize,
        pointCount: t.pointCount,
        vmCount: t.vmCount,
        chunkCount: t.chunkCount,
        usedBytes: t.usedBytes,
        logicalBytes: t.logicalBytes,
        referencedBytes: t.referencedBytes,
        dedupRatio: unique > 0 ? round(t.referencedBytes / unique) : 1,
        compressionRatio: t.usedBytes > 0 ? round(unique / t.usedBytes) : 1,
        freeBytes: await freeBytes(deps.repositoryPath),
      };
      res.json(body);
    }),
  );
  return r;
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await fs.statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The engine is asked at most once per `ttlMs`, however often health is polled. */
function cachedCheck(ttlMs: number, probe: () => Promise<string>): () => Promise<{ ok: boolean; message: string }> {
  let last: { at: number; value: Promise<{ ok: boolean; message: string }> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > ttlMs) {
      last = {
        at: now,
        value: probe().then(
          (message) => ({ ok: true, message }),
          (err: unknown) => ({ ok: false, message: describeError(err) }),
        ),
      };
    }
    return last.value;
  };
}
