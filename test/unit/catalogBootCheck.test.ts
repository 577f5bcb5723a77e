// A point's boot check in the catalog's summary: migration 8 gives older rows none, a job's
// verdict is set on the row, indexing the point again keeps it, a rebuild sets what it read.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Catalog, pointBootCheck, toPointSummary } from '../../backend/src/catalog';
import { openDatabase } from '../../backend/src/catalog/db';
import { MIGRATIONS } from '../../backend/src/catalog/schema';
import { newPointId, type BootCheckRecord, type Manifest } from '../../backend/src/repository';

const MiB = 1 << 20;

function manifest(minute: number): Manifest {
  const created = new Date(Date.parse('2026-03-01T10:00:00.000Z') + minute * 60_000);
  return {
    format: 'olvm-backup-point',
    version: 1,
    pointId: newPointId(created),
    vm: { key: 'vm-a', name: 'alpha', id: 'vm-a' },
    createdAt: created.toISOString(),
    completedAt: new Date(created.getTime() + 1000).toISOString(),
    parentPointId: null,
    consistency: 'crash',
    chunkSize: MiB,
    disks: [
      {
        device: 'vda', node: '', format: 'raw', virtualSize: 4 * MiB, mode: 'full', reason: 'first-backup', bitmap: '', bitmapPersistent: false,
        bytesRead: MiB, chunksNew: 1, chunksReused: 0, chunksZero: 3, bytesStored: MiB, index: { file: 'vda.index', sha256: 'a'.repeat(64), chunkCount: 4 },
      },
    ],
    vmDefinition: null,
    lockedUntil: null,
    meta: {},
  };
}

function record(pointId: string, state: BootCheckRecord['state'], startedAt: string): BootCheckRecord {
  return { pointId, disks: ['vda'], state, reason: 'r', matchedLine: null, consoleTail: [], accel: 'tcg', noNetworkDevice: true, startedAt, durationMs: 5, actor: 't', screenshot: null };
}

describe("a point's boot check in the catalog", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-catboot-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('migration 8: rows indexed by an older version show no boot check', () => {
    const file = path.join(dir, 'm8.db');
    const db = openDatabase(file, MIGRATIONS.slice(0, 7));
    const s = toPointSummary(manifest(0));
    const old: Record<string, unknown> = { ...s };
    delete old['bootCheck'];
    db.prepare(
      'INSERT INTO points (id, vm_id, vm_name, created_at, completed_at, parent_point_id, consistency, virtual_size, bytes_read, bytes_stored, chunk_size, ' +
        "chunks_new, referenced_chunks, referenced_bytes, locked_until, job_id, summary) VALUES (?, 'vm-a', 'alpha', ?, ?, NULL, 'crash', 0, 0, 0, 1, 0, 0, 0, NULL, NULL, ?)",
    ).run(s.id, s.createdAt, s.completedAt, JSON.stringify(old));
    db.close();
    const c = Catalog.open(file);
    try {
      expect(c.points.getPoint(s.id)).toEqual({ ...s, bootCheck: null });
      expect(Object.keys(c.points.getPoint(s.id)!)).toContain('bootCheck');
    } finally {
      c.close();
    }
  });

  test('a verdict set on the row shows in lists; indexing the point again keeps it unless it names one; a rebuild sets what it was given', () => {
    const c = Catalog.open(path.join(dir, 'set.db'));
    try {
      const a = manifest(1);
      const b = manifest(2);
      c.points.indexPoint(a);
      c.points.indexPoint(b);
      expect(c.points.getPoint(a.pointId)?.bootCheck).toBeNull();
      const ok = pointBootCheck(record(a.pointId, 'ok', '2026-03-02T00:00:00.000Z'));
      expect(ok).toEqual({ state: 'ok', at: '2026-03-02T00:00:00.000Z' });
      expect(c.points.setBootCheck(a.pointId, ok)).toBe(true);
      expect(c.points.setBootCheck(newPointId(), ok)).toBe(false);
      expect(c.points.listPoints().map((p) => p.bootCheck)).toEqual([null, ok]);
      c.points.indexPoint(a);
      expect(c.points.getPoint(a.pointId)).toEqual(toPointSummary(a, ok));
      const failed = { state: 'timeout' as const, at: '2026-03-03T00:00:00.000Z' };
      c.points.indexPoint(a, failed);
      expect(c.points.getPoint(a.pointId)?.bootCheck).toEqual(failed);
      c.points.replaceAllPoints([a, b], new Map([[b.pointId, ok]]));
      expect(c.points.listPoints().map((p) => [p.id, p.bootCheck])).toEqual([
        [b.pointId, ok],
        [a.pointId, null],
      ]);
    } finally {
      c.close();
    }
  });
});
