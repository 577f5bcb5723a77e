// The method that made a point in the catalog: from the manifest's meta (absent: qmp), and
// migration 7, which gives the points indexed by older versions theirs.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Catalog, toPointSummary } from '../../backend/src/catalog';
import { openDatabase } from '../../backend/src/catalog/db';
import { MIGRATIONS } from '../../backend/src/catalog/schema';
import { newPointId, type Manifest } from '../../backend/src/repository';

const MiB = 1 << 20;

function manifest(minute: number, meta: Record<string, unknown>): Manifest {
  const created = new Date(Date.parse('2026-03-01T10:00:00.000Z') + minute * 60_000);
  return {
    format: 'olvm-backup-point',
    version: 1,
    pointId: newPointId(created),
    vm: { key: 'vm-a', name: 'alpha', id: 'vm-a' },
    createdAt: created.toISOString(),
    completedAt: new Date(created.getTime() + 1000).toISOString(),
    parentPointId: null,
    consistency: 'filesystem',
    chunkSize: MiB,
    disks: [
      {
        device: 'ua-d1', node: '', format: 'qcow2', virtualSize: 4 * MiB, mode: 'full', reason: 'disk-not-incremental', bitmap: '', bitmapPersistent: true,
        bytesRead: MiB, chunksNew: 1, chunksReused: 0, chunksZero: 3, bytesStored: MiB, index: { file: 'ua-d1.index', sha256: 'a'.repeat(64), chunkCount: 4 },
      },
    ],
    vmDefinition: null,
    lockedUntil: null,
    meta,
  };
}

describe("a point's method in the catalog", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-catmethod-'));
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the summary names the method of the manifest, qmp when it names none (points from before the engine method)', () => {
    expect(toPointSummary(manifest(0, { method: 'engine', engine: { vmId: 'vm-a', checkpointId: 'c1' } })).method).toBe('engine');
    expect(toPointSummary(manifest(1, { method: 'qmp' })).method).toBe('qmp');
    expect(toPointSummary(manifest(2, {})).method).toBe('qmp');
    // a value the contract does not know is not passed on
    expect(toPointSummary(manifest(3, { method: 'vddk' })).method).toBe('qmp');
  });

  test('migration 7 gives every point indexed by an older version the method qmp; points naming one keep it', () => {
    const file = path.join(dir, 'm7.db');
    const db = openDatabase(file, MIGRATIONS.slice(0, 6));
    const old = toPointSummary(manifest(0, {}));
    const oldSummary: Record<string, unknown> = { ...old };
    delete oldSummary['method'];
    const engine = toPointSummary(manifest(1, { method: 'engine' }));
    const put = db.prepare(
      'INSERT INTO points (id, vm_id, vm_name, created_at, completed_at, parent_point_id, consistency, virtual_size, bytes_read, bytes_stored, chunk_size, ' +
        "chunks_new, referenced_chunks, referenced_bytes, locked_until, job_id, summary) VALUES (?, 'vm-a', 'alpha', ?, ?, NULL, 'filesystem', 0, 0, 0, 1, 0, 0, 0, NULL, NULL, ?)",
    );
    put.run(old.id, old.createdAt, old.completedAt, JSON.stringify(oldSummary));
    put.run(engine.id, engine.createdAt, engine.completedAt, JSON.stringify(engine));
    db.close();
    const c = Catalog.open(file);
    try {
      expect(c.points.getPoint(old.id)).toEqual(old);
      expect(c.points.getPoint(engine.id)?.method).toBe('engine');
    } finally {
      c.close();
    }
  });
});
