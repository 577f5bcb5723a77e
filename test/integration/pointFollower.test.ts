import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AuditImporter, Catalog, PointFollower, syncCatalog } from '../../backend/src/catalog';
import { Repository, type VmIdentity } from '../../backend/src/repository';
import { CS, writePoint } from './retentionFixture';

const vm: VmIdentity = { key: 'vm-a', name: 'alpha' };
const FUTURE = '2099-01-01T00:00:00.000Z';

/**
 * The operator's CLI changes points in the repository, never in the service's catalog. What the
 * service does at start-up and every few seconds — import the repository's audit records, then
 * let the follower apply them — brings lock changes and deletions into the point index, also
 * those made while the service was down (the start-up reconciliation alone re-reads no row it
 * has).
 */
describe('point index follows changes made behind the service (audit records)', () => {
  let dir: string;
  let repo: Repository;
  let catalog: Catalog;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-follow-'));
    repo = await Repository.init(path.join(dir, 'repo'), { chunkSize: CS, workers: 1 });
    catalog = Catalog.open(path.join(dir, 'catalog.sqlite'));
  });
  afterEach(async () => {
    catalog.close();
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** One start-up of the service: reconcile, construct the follower, import, apply. */
  async function startUp(): Promise<{ follower: PointFollower; importer: AuditImporter }> {
    await syncCatalog(catalog, repo);
    const follower = new PointFollower(catalog, repo);
    const importer = new AuditImporter(catalog.audit, 'repository', repo.auditFile);
    await importer.run();
    await follower.apply();
    return { follower, importer };
  }

  test('an unlock and a deletion made while the service was down show after its start; one made while it runs, after the next import', async () => {
    const a = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(CS) }], { lockedUntil: FUTURE });
    const b = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(CS) }], { lockedUntil: FUTURE });
    const c = await writePoint(repo, vm, [{ device: 'vda', image: randomBytes(CS) }], { lockedUntil: null });
    await startUp();
    expect([a, b, c].map((m) => catalog.points.getPoint(m.pointId)?.lockedUntil)).toEqual([FUTURE, FUTURE, null]);

    // "down": the operator unlocks a and deletes c
    await repo.unlockPoint(a.pointId, { reason: 'ticket 1', operator: 'cli:root@backup' });
    await repo.deletePoint(c.pointId, { reason: 'ticket 1', actor: 'cli:root@backup' });
    const { follower, importer } = await startUp();
    expect(catalog.points.getPoint(a.pointId)?.lockedUntil).toBeNull();
    expect(catalog.points.getPoint(b.pointId)?.lockedUntil).toBe(FUTURE);
    expect(catalog.points.getPoint(c.pointId)).toBeUndefined();

    // running: unlock b, then delete it; a lock extension too
    await repo.extendLock(a.pointId, new Date(FUTURE), { actor: 'cli:root@backup', reason: 'legal hold' });
    await repo.unlockPoint(b.pointId, { reason: 'ticket 2', operator: 'cli:root@backup' });
    expect(await importer.run()).toBe(2);
    expect(await follower.apply()).toBe(2);
    expect(catalog.points.getPoint(a.pointId)?.lockedUntil).toBe(FUTURE);
    expect(catalog.points.getPoint(b.pointId)?.lockedUntil).toBeNull();
    await repo.deletePoint(b.pointId, { reason: 'ticket 2', actor: 'cli:root@backup' });
    await importer.run();
    await follower.apply();
    expect(catalog.points.pointIds()).toEqual([a.pointId]);
    // nothing new: nothing done
    expect(await follower.apply()).toBe(0);
  });
});
