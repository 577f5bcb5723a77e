import type { Statement } from 'better-sqlite3';
import type { PointBootCheck, PointSummary } from './model';
import { AppError } from '../errors';
import type { Manifest } from '../repository';
import { decodeCursor, encodeCursor } from './cursor';
import type { Db } from './db';
import { manifestJobId, toPointSummary } from './pointSummary';
import { jsonList } from './sqlite';
import { StatementCache } from './statementCache';

export interface PointQuery {
  vmId?: string;
  /** At most this many points (all when absent). */
  limit?: number;
  /** `<createdAt>|<id>` of the last point of the previous page (encodeCursor). */
  before?: string;
}

export interface RepositoryTotals {
  pointCount: number;
  vmCount: number;
  chunkCount: number;
  usedBytes: number;
  logicalBytes: number;
  referencedBytes: number;
  /** Of the newest point; 0 when there is none. */
  chunkSize: number;
}

interface PointParams {
  id: string;
  vm_id: string;
  vm_name: string;
  created_at: string;
  completed_at: string;
  parent_point_id: string | null;
  consistency: string;
  virtual_size: number;
  bytes_read: number;
  bytes_stored: number;
  chunk_size: number;
  chunks_new: number;
  referenced_chunks: number;
  referenced_bytes: number;
  locked_until: string | null;
  job_id: string | null;
  summary: string;
}

const COLUMNS =
  'id, vm_id, vm_name, created_at, completed_at, parent_point_id, consistency, virtual_size, bytes_read, bytes_stored, ' +
  'chunk_size, chunks_new, referenced_chunks, referenced_bytes, locked_until, job_id, summary';

/**
 * The `points` table: an index of the repository's restore points, so that listing a VM's points
 * or the fleet's totals does not read thousands of manifests. The repository stays the truth;
 * rebuildCatalog recreates this table from it. Each row keeps the point's PointSummary as JSON
 * and, beside it, the numbers that queries filter, sort or sum on.
 */
export class PointsTable {
  private readonly upsertStmt: Statement<[PointParams]>;
  private readonly removeStmt: Statement<[string]>;
  private readonly bootCheckStmt: Statement<[string, string]>;
  private readonly removeAllStmt: Statement<[]>;
  private readonly getStmt: Statement<[string], { summary: string }>;
  private readonly idsStmt: Statement<[], { id: string }>;
  private readonly lastByVmStmt: Statement<[string], { vm_id: string; summary: string }>;
  private readonly countByVmStmt: Statement<[string], { vm_id: string; n: number }>;
  private readonly countAllVmsStmt: Statement<[], { vm_id: string; n: number }>;
  private readonly totalsStmt: Statement<[], Omit<RepositoryTotals, 'chunkSize'>>;
  private readonly chunkSizeStmt: Statement<[], { chunk_size: number }>;
  private readonly listStmts: StatementCache<{ summary: string; created_at: string; id: string }>;

  constructor(private readonly db: Db) {
    this.listStmts = new StatementCache(db, (where) => `SELECT summary, created_at, id FROM points ${where} ORDER BY created_at DESC, id DESC LIMIT ?`);
    // a point indexed again keeps the boot check it shows unless the new row names one: the
    // check is not in the manifest the row is made from
    const assign = COLUMNS.split(', ')
      .filter((c) => c !== 'id')
      .map((c) =>
        c === 'summary'
          ? "summary = json_set(excluded.summary, '$.bootCheck', json(coalesce(json_extract(excluded.summary, '$.bootCheck'), json_extract(points.summary, '$.bootCheck'))))"
          : `${c} = excluded.${c}`,
      )
      .join(', ');
    this.upsertStmt = db.prepare(
      `INSERT INTO points (${COLUMNS}) VALUES (${COLUMNS.split(', ').map((c) => `@${c}`).join(', ')}) ` +
        `ON CONFLICT (id) DO UPDATE SET ${assign}`,
    );
    this.removeStmt = db.prepare('DELETE FROM points WHERE id = ?');
    this.bootCheckStmt = db.prepare("UPDATE points SET summary = json_set(summary, '$.bootCheck', json(?)) WHERE id = ?");
    this.removeAllStmt = db.prepare('DELETE FROM points');
    this.getStmt = db.prepare('SELECT summary FROM points WHERE id = ?');
    this.idsStmt = db.prepare('SELECT id FROM points');
    this.lastByVmStmt = db.prepare(
      'SELECT vm_id, summary FROM points WHERE rowid IN (SELECT (SELECT p.rowid FROM points p WHERE p.vm_id = v.value ' +
        'ORDER BY p.created_at DESC, p.id DESC LIMIT 1) FROM json_each(?) v)',
    );
    this.countByVmStmt = db.prepare(
      'SELECT vm_id, count(*) AS n FROM points WHERE vm_id IN (SELECT value FROM json_each(?)) GROUP BY vm_id',
    );
    this.countAllVmsStmt = db.prepare('SELECT vm_id, count(*) AS n FROM points GROUP BY vm_id');
    this.totalsStmt = db.prepare(
      'SELECT count(*) AS pointCount, count(DISTINCT vm_id) AS vmCount, coalesce(sum(chunks_new), 0) AS chunkCount, ' +
        'coalesce(sum(bytes_stored), 0) AS usedBytes, coalesce(sum(virtual_size), 0) AS logicalBytes, ' +
        'coalesce(sum(referenced_bytes), 0) AS referencedBytes FROM points',
    );
    this.chunkSizeStmt = db.prepare('SELECT chunk_size FROM points ORDER BY created_at DESC, id DESC LIMIT 1');
  }

  /** Adds the point or overwrites its row with the same values: indexing a manifest twice is
   *  harmless (the job runner indexes what it wrote, a later sync may meet it again). */
  indexPoint(m: Manifest, bootCheck: PointBootCheck | null = null): void {
    this.upsertStmt.run(pointParams(m, bootCheck));
  }

  /** The point's summary shows this boot check (a job or a sync read it); false when the
   *  catalog has no such point. */
  setBootCheck(pointId: string, bootCheck: PointBootCheck | null): boolean {
    return this.bootCheckStmt.run(JSON.stringify(bootCheck), pointId).changes > 0;
  }

  /** True when there was such a row. */
  removePoint(id: string): boolean {
    return this.removeStmt.run(id).changes > 0;
  }

  /** Newest first (by createdAt, then id). */
  listPoints(q: PointQuery = {}): PointSummary[] {
    return this.listPointsJson(q).rows.map((summary) => parseSummary({ summary }));
  }

  /** As listPoints, each point as the JSON text of its PointSummary (a list page is sent as
   *  stored, without parsing and serializing hundreds of summaries per request), and the
   *  cursor of the next page when this one is full. */
  listPointsJson(q: PointQuery = {}): { rows: string[]; nextBefore: string | null } {
    if (q.limit !== undefined && (!Number.isSafeInteger(q.limit) || q.limit < 1)) {
      throw new AppError('INVALID_ARGUMENT', `invalid point list limit ${q.limit}`);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.vmId !== undefined) {
      where.push('vm_id = ?');
      params.push(q.vmId);
    }
    if (q.before !== undefined) {
      const c = decodeCursor(q.before);
      where.push('(created_at, id) < (?, ?)');
      params.push(c.createdAt, c.id);
    }
    params.push(q.limit ?? -1); // LIMIT -1: no limit
    const rows = this.listStmts.get(where).all(...params);
    const last = rows.length > 0 && rows.length === q.limit ? rows[rows.length - 1] : undefined;
    return { rows: rows.map((r) => r.summary), nextBefore: last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null };
  }

  getPoint(id: string): PointSummary | undefined {
    const row = this.getStmt.get(id);
    return row ? parseSummary(row) : undefined;
  }

  /** Every point id in the catalog (for syncing with the repository). */
  pointIds(): string[] {
    return this.idsStmt.all().map((r) => r.id);
  }

  /** The newest point of each VM that has one. */
  lastPointByVm(vmIds: readonly string[]): Map<string, PointSummary> {
    const out = new Map<string, PointSummary>();
    for (const row of this.lastByVmStmt.all(jsonList(vmIds))) out.set(row.vm_id, parseSummary(row));
    return out;
  }

  /** Every VM that has points, with how many (the deleted-VM view starts from these). */
  vmsWithPoints(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.countAllVmsStmt.all()) out.set(row.vm_id, row.n);
    return out;
  }

  /** Every asked VM is in the map, with 0 when it has no point. */
  pointCountByVm(vmIds: readonly string[]): Map<string, number> {
    const out = new Map<string, number>(vmIds.map((id) => [id, 0]));
    for (const row of this.countByVmStmt.all(jsonList(vmIds))) out.set(row.vm_id, row.n);
    return out;
  }

  /** One transaction: readers see the old index or the new one, never an empty table. */
  replaceAllPoints(manifests: readonly Manifest[], bootChecks: ReadonlyMap<string, PointBootCheck> = new Map()): void {
    this.db.transaction(() => {
      this.removeAllStmt.run();
      for (const m of manifests) this.upsertStmt.run(pointParams(m, bootChecks.get(m.pointId) ?? null));
    }).immediate();
  }

  /**
   * Repository-wide figures for the status page, summed over the index. chunkCount sums each
   * point's new chunks: a chunk is new in exactly one point, so this is exact until a point is
   * deleted (its new chunks may live on in later points) or garbage collection runs.
   */
  repositoryTotals(): RepositoryTotals {
    const t = this.totalsStmt.get() ?? { pointCount: 0, vmCount: 0, chunkCount: 0, usedBytes: 0, logicalBytes: 0, referencedBytes: 0 };
    return { ...t, chunkSize: this.chunkSizeStmt.get()?.chunk_size ?? 0 };
  }
}

function pointParams(m: Manifest, bootCheck: PointBootCheck | null): PointParams {
  const s = toPointSummary(m, bootCheck);
  let chunksNew = 0;
  let referencedChunks = 0;
  let referencedBytes = 0;
  for (const d of m.disks) {
    const nonZero = Math.max(0, d.index.chunkCount - d.chunksZero);
    chunksNew += d.chunksNew;
    referencedChunks += nonZero;
    // Whole chunks, capped by the disk's size: when the disk's last chunk is partial and not
    // zero this still counts it as whole (unless the cap applies), an overestimate of less than
    // one chunk per disk, which the status page can live with.
    referencedBytes += Math.min(nonZero * m.chunkSize, d.virtualSize);
  }
  return {
    id: s.id,
    vm_id: s.vmId,
    vm_name: s.vmName,
    created_at: s.createdAt,
    completed_at: s.completedAt,
    parent_point_id: s.parentPointId,
    consistency: s.consistency,
    virtual_size: s.virtualSize,
    bytes_read: s.bytesRead,
    bytes_stored: s.bytesStored,
    chunk_size: m.chunkSize,
    chunks_new: chunksNew,
    referenced_chunks: referencedChunks,
    referenced_bytes: referencedBytes,
    locked_until: s.lockedUntil,
    job_id: manifestJobId(m),
    summary: JSON.stringify(s),
  };
}

function parseSummary(row: { summary: string }): PointSummary {
  return JSON.parse(row.summary) as PointSummary;
}
