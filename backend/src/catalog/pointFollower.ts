import { isAppError } from '../errors';
import type { Repository } from '../repository';
import type { Catalog } from './catalog';
import { syncCatalog } from './rebuild';

/**
 * Keeps the point index in step with what changes points behind the service's back: the
 * operator's CLI on the backup server (`points unlock`, `points lock`, `points delete`, `prune`),
 * which writes to the repository and its audit log but not to the service's catalog. The
 * repository's audit records, once imported into the catalog's audit table, name what changed:
 * a lock change re-reads that point's manifest, a deletion or prune drops the rows of points that
 * are gone. Without this the portal's lists showed an unlocked point as locked until a restart.
 */
export class PointFollower {
  private seen: number;

  /** Construct before the first audit import: records imported from then on are followed (at
   *  start-up, those written while the service was down). */
  constructor(
    private readonly catalog: Catalog,
    private readonly repository: Repository,
  ) {
    this.seen = catalog.audit.lastSeq();
  }

  /** Applies the records imported since the last call; how many points it re-indexed or dropped. */
  async apply(): Promise<number> {
    const changes = this.catalog.audit.repositoryChangesAfter(this.seen);
    if (changes.length === 0) return 0;
    let n = 0;
    const relock = new Set<string>();
    let removals = false;
    for (const c of changes) {
      if ((c.action === 'lock-extend' || c.action === 'unlock') && c.pointId) relock.add(c.pointId);
      else removals = true;
    }
    for (const id of relock) {
      try {
        this.catalog.points.indexPoint(await this.repository.readManifest(id));
        n++;
      } catch (err) {
        // deleted since: the removals below drop it
        if (!isAppError(err, 'REPO_POINT_NOT_FOUND')) throw err;
        removals = true;
      }
    }
    if (removals) n += (await syncCatalog(this.catalog, this.repository)).removed;
    this.seen = changes[changes.length - 1]!.seq;
    return n;
  }
}
