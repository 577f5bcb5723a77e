import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Catalog, rebuildCatalog, syncBootChecks, syncCatalog, toPointSummary } from '../../backend/src/catalog';
import { jobsOf } from '../helpers/stores';
import { BOOTCHECKS_DIR, clearBootCheck, newPointId, Repository, writeBootCheck, type BootCheckRecord, type DiskIndex, type Manifest, type VmIdentity } from '../../backend/src/repository';
import { runCli, type CliRun } from '../helpers/cli';

const KiB = 1024;
const CS = 256 * KiB;

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

const vmA: VmIdentity = { key: '6a1c0d2e-0000-4000-8000-00000000000a', name: 'web1', id: '6a1c0d2e-0000-4000-8000-00000000000a' };
const vmB: VmIdentity = { key: 'db1', name: 'db1' };

/**
 * Writes a point straight through the repository API (no QEMU): one disk of 4½ chunks whose
 * chunks `dirty` get fresh random data, the others carried over from `base` (or zero).
 */
async function writePoint(
  repo: Repository,
  vm: VmIdentity,
  at: Date,
  opts: { parent?: Manifest; dirty: number[]; engine?: boolean },
): Promise<Manifest> {
  const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: opts.parent?.pointId ?? null });
  const virtualSize = 4 * CS + CS / 2;
  let base: DiskIndex | undefined;
  if (opts.parent) base = await repo.readIndex(opts.parent.pointId, 'virtio-disk0');
  const dw = w.beginDisk({ device: 'virtio-disk0', virtualSize, ...(base ? { base } : {}) });
  await Promise.all(opts.dirty.map((i) => dw.putChunk(i, randomBytes(dw.chunkLength(i)))));
  await dw.finish();
  const incremental = opts.parent !== undefined;
  return w.commit({
    disks: [
      {
        device: 'virtio-disk0',
        node: 'libvirt-1-format',
        format: 'qcow2',
        mode: incremental ? 'incremental' : 'full',
        reason: incremental ? 'incremental' : 'first-backup',
        bitmap: 'olvm-backup',
        bitmapPersistent: true,
        bytesRead: opts.dirty.length * CS,
        ...(opts.engine ? { meta: { diskId: 'd0000000-0000-4000-8000-000000000001', alias: 'web1_Disk1', description: '' } } : {}),
      },
    ],
    consistency: 'crash',
    vmDefinition: null,
    meta: opts.engine ? { jobId: `job-${at.getTime()}`, engine: { vmId: vm.id, startedPaused: false, excluded: [] } } : {},
  });
}

describe('catalog rebuilt from a real repository', () => {
  let dir: string;
  let repo: Repository;
  let catalog: Catalog;
  let manifests: Manifest[];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-catalog-rebuild-'));
    repo = await Repository.init(path.join(dir, 'repo'), { chunkSize: CS, workers: 1 });
    const a1 = await writePoint(repo, vmA, new Date('2026-05-01T01:00:00Z'), { dirty: [0, 1, 4], engine: true });
    const b1 = await writePoint(repo, vmB, new Date('2026-05-01T02:00:00Z'), { dirty: [0, 2] });
    const a2 = await writePoint(repo, vmA, new Date('2026-05-02T01:00:00Z'), { parent: a1, dirty: [1], engine: true });
    manifests = [a1, b1, a2];
    catalog = Catalog.open(path.join(dir, 'catalog', 'catalog.db'));
  });
  afterAll(async () => {
    catalog?.close();
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('rebuild indexes every point with the numbers of its manifest, and is idempotent', async () => {
    jobsOf(catalog).insertJob(
      {
      id: 'kept',
      kind: 'backup',
      restore: null,
      state: 'succeeded',
      vmId: vmA.key,
      vmName: vmA.name,
      hostId: null,
      requestedBy: { id: 'u', name: 'admin' },
      forceFull: false,
      createdAt: '2026-05-01T00:59:00.000Z',
      startedAt: null,
      finishedAt: null,
      cancelRequested: false,
      progress: null,
      result: null,
      error: null,
      },
      { v: 1, kind: 'backup', forceFull: false, consistency: 'auto', lockDays: 0, origin: null },
    );
    expect(await rebuildCatalog(catalog, repo)).toEqual({ points: 3, vms: 2 });

    const [a1, b1, a2] = manifests as [Manifest, Manifest, Manifest];
    expect(catalog.points.listPoints()).toEqual([a2, b1, a1].map((m) => toPointSummary(m)));
    const p2 = catalog.points.getPoint(a2.pointId);
    expect(p2).toMatchObject({ vmId: vmA.id, vmName: 'web1', parentPointId: a1.pointId, bytesRead: CS, virtualSize: 4 * CS + CS / 2 });
    expect(p2?.disks[0]).toMatchObject({ diskId: 'd0000000-0000-4000-8000-000000000001', alias: 'web1_Disk1', mode: 'incremental', chunksNew: 1 });
    expect(catalog.points.getPoint(b1.pointId)?.disks[0]).toMatchObject({ diskId: null, alias: null, chunksNew: 2, chunksZero: 3 });
    expect(catalog.points.pointCountByVm([vmA.key, 'db1'])).toEqual(new Map([[vmA.key, 2], ['db1', 1]]));

    const disks = manifests.flatMap((m) => m.disks);
    const totals = catalog.points.repositoryTotals();
    expect(totals).toEqual({
      pointCount: 3,
      vmCount: 2,
      chunkCount: 3 + 2 + 1,
      usedBytes: disks.reduce((n, d) => n + d.bytesStored, 0),
      logicalBytes: 3 * (4 * CS + CS / 2),
      // a1: chunks 0,1,4 (4 is the half chunk, counted whole: the documented approximation); b1: 0,2; a2: 0,1,4
      referencedBytes: 3 * CS + 2 * CS + 3 * CS,
      chunkSize: CS,
    });

    expect(await rebuildCatalog(catalog, repo)).toEqual({ points: 3, vms: 2 });
    expect(catalog.points.listPoints()).toEqual([a2, b1, a1].map((m) => toPointSummary(m)));
    expect(catalog.points.repositoryTotals()).toEqual(totals);
    expect(jobsOf(catalog).getJob('kept')).toBeDefined(); // job history is not the repository's
  });

  test('sync adds missing points and drops rows whose point is gone', async () => {
    const [a1, b1, a2] = manifests as [Manifest, Manifest, Manifest];
    catalog.points.replaceAllPoints([a1]);
    expect(await syncCatalog(catalog, repo)).toEqual({ added: 2, removed: 0 });
    expect(catalog.points.listPoints().map((p) => p.id)).toEqual([a2.pointId, b1.pointId, a1.pointId]);

    await fs.rm(path.join(repo.dir, 'points', b1.pointId), { recursive: true });
    expect(await syncCatalog(catalog, repo)).toEqual({ added: 0, removed: 1 });
    expect(catalog.points.getPoint(b1.pointId)).toBeUndefined();
    expect(catalog.points.listPoints().map((p) => p.id)).toEqual([a2.pointId, a1.pointId]);
    expect(await syncCatalog(catalog, repo)).toEqual({ added: 0, removed: 0 });
  });

  test("boot checks: a rebuild, a sync and the start-up's boot check sync show each point's record; a broken record shows none", async () => {
    const [a1, , a2] = manifests as [Manifest, Manifest, Manifest]; // b1 was deleted above
    const record = (pointId: string, state: BootCheckRecord['state'], startedAt: string): BootCheckRecord => ({
      pointId, disks: ['virtio-disk0'], state, reason: 'r', matchedLine: null, consoleTail: [], accel: 'tcg', noNetworkDevice: true, startedAt, durationMs: 1, actor: 'cli:test', screenshot: null,
    });
    await writeBootCheck(repo.dir, record(a1.pointId, 'ok', '2026-03-05T00:00:00.000Z'), null, false);
    expect(await rebuildCatalog(catalog, repo)).toEqual({ points: 2, vms: 1 });
    expect(catalog.points.listPoints().map((p) => [p.id, p.bootCheck])).toEqual([
      [a2.pointId, null],
      [a1.pointId, { state: 'ok', at: '2026-03-05T00:00:00.000Z' }],
    ]);
    // a point the sync indexes comes with its record
    catalog.points.removePoint(a1.pointId);
    expect(await syncCatalog(catalog, repo)).toEqual({ added: 1, removed: 0 });
    expect(catalog.points.getPoint(a1.pointId)?.bootCheck).toEqual({ state: 'ok', at: '2026-03-05T00:00:00.000Z' });
    // checks made behind the service's back (the CLI): the start-up's sync shows them; a record
    // that cannot be read shows none and fails nothing
    await writeBootCheck(repo.dir, record(a2.pointId, 'timeout', '2026-03-06T00:00:00.000Z'), null, false);
    await fs.writeFile(path.join(repo.dir, BOOTCHECKS_DIR, `${a1.pointId}.json`), '{not json');
    expect(await syncBootChecks(catalog, repo)).toEqual({ checked: 1 });
    expect(catalog.points.listPoints().map((p) => [p.id, p.bootCheck])).toEqual([
      [a2.pointId, { state: 'timeout', at: '2026-03-06T00:00:00.000Z' }],
      [a1.pointId, null],
    ]);
    await clearBootCheck(repo.dir, a1.pointId);
    await clearBootCheck(repo.dir, a2.pointId);
  });

  test('olvm-backup catalog rebuild prints the counts', async () => {
    const [a1, , a2] = manifests as [Manifest, Manifest, Manifest]; // b1 was deleted above
    const file = path.join(dir, 'cli', 'catalog.db');
    const json = await cli('catalog', 'rebuild', '--repo', repo.dir, '--catalog', file, '--json');
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ repo: repo.dir, catalog: file, points: 2, vms: 1 });

    const text = await cli('catalog', 'rebuild', '--repo', repo.dir, '--catalog', file);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`catalog rebuilt: 2 restore points of 1 VMs from ${repo.dir}\n`);

    const c = Catalog.open(file);
    try {
      expect(c.points.listPoints().map((p) => p.id)).toEqual([a2.pointId, a1.pointId]);
    } finally {
      c.close();
    }

    const bad = await cli('catalog', 'rebuild', '--repo', path.join(dir, 'nope'), '--catalog', file);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^olvm-backup: .*nope/);
  });
});
