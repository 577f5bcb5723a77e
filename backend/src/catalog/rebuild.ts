import { isAppError } from '../errors';
import type { Manifest, Repository } from '../repository';
import type { Catalog } from './catalog';
import { manifestVmId } from './pointSummary';

/** Manifests read at once: enough to hide file latency, few enough to bound open files. */
const READ_CONCURRENCY = 16;

/**
 * Recreates the point index from the repository, the truth: every complete point, in one
 * transaction, so readers never see a half-built index. For a lost or damaged catalog, and
 * after points were deleted or restored behind the service's back.
 */
export async function rebuildCatalog(catalog: Catalog, repo: Repository): Promise<{ points: number; vms: number }> {
  const manifests = await readManifests(repo, (await repo.listPoints()).map((p) => p.pointId));
  catalog.points.replaceAllPoints(manifests);
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
  catalog.transaction(() => {
    for (const id of gone) catalog.points.removePoint(id);
    for (const m of missing) catalog.points.indexPoint(m);
  });
  return { added: missing.length, removed: gone.length };
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
