/**
 * `repo sync` through a remote repository (FORMAT.md §24, §25): local → remote → local over each
 * remote backend (a directory store, and S3 on the Ceph RGW lab) — the copy read back from a
 * fresh cache of the store is the same point, byte-exact, its lock kept; a second run copies
 * nothing; a reader-mode destination is refused.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, syncRepositories } from '../../backend/src/repository';
import { remoteBackends } from '../helpers/repoBackends';
import { initRepo, V2, V2_ENCRYPTED } from '../helpers/repoFormats';
import { CS, expectCode } from './retentionFixture';
import { expectCopied, writeHistory } from './syncFixture';

const DAY_MS = 86_400_000;

describe.each(remoteBackends())('repo sync local → $name → local', (backend) => {
  let dir: string;
  const open: Repository[] = [];
  const keep = <T extends Repository>(r: T): T => (open.push(r), r);
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), `olvm-sync-${backend.name}-`));
  });
  afterAll(async () => {
    await Promise.all(open.map((r) => r.close()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('identical points at each hop, the lock kept; a second run copies nothing; a reader destination is refused', async () => {
    const a = keep(await initRepo(path.join(dir, 'a'), V2_ENCRYPTED, { chunkSize: CS, workers: 2 }));
    const until = new Date(Date.now() + DAY_MS);
    const h = await writeHistory(a, { lock: (n) => (n === 1 ? until : null) });
    const remote = await backend.init(path.join(dir, 'remote'), { chunkSize: CS, version: 2 });
    let r;
    try {
      r = await syncRepositories(a, remote);
      expect([r.ok, r.copied]).toEqual([true, 4]);
      expect(r.to).toBe(remote.remote?.location);
      expect((await syncRepositories(a, remote)).copied).toBe(0);
    } finally {
      await remote.close();
    }
    // read back from the store through a fresh cache, as a reader
    const reader = keep(await backend.open(path.join(dir, 'remote'), { mode: 'reader', cacheDir: path.join(dir, 'reader-cache') }));
    for (const m of h.points) await expectCopied(reader, m, h.images);
    expect((await reader.readManifest(h.points[1]?.pointId ?? '')).lockedUntil).toBe(until.toISOString());
    const back = keep(await initRepo(path.join(dir, 'back'), V2, { chunkSize: CS, workers: 2 }));
    await expectCode(syncRepositories(back, reader), 'INVALID_ARGUMENT');
    const r2 = await syncRepositories(reader, back);
    expect([r2.ok, r2.copied, r2.points.map((p) => p.incremental)]).toEqual([true, 4, [false, true, true, false]]);
    for (const m of h.points) await expectCopied(back, m, h.images);
    expect((await syncRepositories(reader, back)).copied).toBe(0);
  }, 600_000);
});
