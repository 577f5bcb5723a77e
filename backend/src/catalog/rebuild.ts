import { isAppError } from '../errors';
import { readBootCheck, type Manifest, type Repository } from '../repository';
import type { Catalog } from './catalog';
import type { PointBootCheck } from './model';
import { manifestVmId, pointBootCheck } from './pointSummary';

/** Manifests read at once: enough to hide file latency, few enough to bound open files. */
const READ_CONCURRENCY = 16;

/**
 * Recreates the point index from the repository, the truth: every complete point, in one
 * transaction, so readers never see a half-built index. For a lost or damaged catalog, and
 * after points were deleted or restored behind the service's back.
 */
export async function rebuildCatalog(catalog: Catalog, repo: Repository): Promise<{ points: number; vms: number }> {
  const manifests = await readManifests(repo, (await repo.listPoints()).map((p) => p.pointId));
  catalog.points.replaceAllPoints(manifests, await readBootChecks(repo, manifests.map((m) => m.pointId)));
  return { points: manifests.length, vms: new Set(manifests.map(manifestVmId)).size };
}

/**
 * The cheap start-up reconciliation: indexes points the catalog lacks (written while the service
 * was down, or committed just before a crash kept it from indexing them) and drops rows whose
 * point is gone. Rows already present are not re-read.
 */
export async function syncCatalog(catalog: Catalog, repo: Repository): Promise<{ added: number; removed: number }> {
  const inRepo = new Set((await repo.listPoints()).map((p) => p.pointId));
  const inCatalog = new Set(catalog.points.pointIds());
  const missing = await readManifests(
    repo,
    [...inRepo].filter((id) => !inCatalog.has(id)),
  );
  const gone = [...inCatalog].filter((id) => !inRepo.has(id));
  const checks = await readBootChecks(
    repo,
    missing.map((m) => m.pointId),
  );
  catalog.transaction(() => {
    for (const id of gone) catalog.points.removePoint(id);
    for (const m of missing) catalog.points.indexPoint(m, checks.get(m.pointId) ?? null);
  });
  return { added: missing.length, removed: gone.length };
}

/**
 * The start-up's reconciliation of boot checks: each indexed point shows the record the
 * repository holds for it (checks made by the CLI while the service ran, or before an upgrade
 * that brought the column). One small file read per point.
 */
export async function syncBootChecks(catalog: Catalog, repo: Repository): Promise<{ checked: number }> {
  const checks = await readBootChecks(repo, catalog.points.pointIds());
  catalog.transaction(() => {
    for (const id of catalog.points.pointIds()) catalog.points.setBootCheck(id, checks.get(id) ?? null);
  });
  return { checked: checks.size };
}

/** The boot check shown for each point that has a readable record (an unreadable one shows
 *  none: the point's own listing must not fail on it). */
async function readBootChecks(repo: Repository, ids: readonly string[]): Promise<Map<string, PointBootCheck>> {
  const out = new Map<string, PointBootCheck>();
  for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
    const batch = await Promise.all(
      ids.slice(i, i + READ_CONCURRENCY).map((id) =>
        readBootCheck(repo.dir, id).catch((err: unknown) => {
          if (isAppError(err, 'REPO_CORRUPT')) return null;
          throw err;
        }),
      ),
    );
    for (const r of batch) if (r) out.set(r.pointId, pointBootCheck(r));
  }
  return out;
}

/** Points deleted or found damaged between the listing and the read are left out, as the
 *  listing itself leaves out incomplete and damaged points. */
async function readManifests(repo: Repository, ids: readonly string[]): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
    const batch = await Promise.all(
      ids.slice(i, i + READ_CONCURRENCY).map((id) =>
        repo.readManifest(id).catch((err: unknown) => {
          if (isAppError(err, 'REPO_POINT_NOT_FOUND') || isAppError(err, 'REPO_CORRUPT')) return undefined;
          throw err;
        }),
      ),
    );
    for (const m of batch) if (m) out.push(m);
  }
  return out;
}
