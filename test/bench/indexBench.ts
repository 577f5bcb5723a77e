/**
 * Benchmark: index bytes per incremental point of a large sparse disk (format 2, FORMAT.md §19).
 *
 *   node dist/test/bench/indexBench.js [--disk-gib 1024 --change-pct 1 --chunk-kib 256]
 *
 * A DISK GiB disk whose data is CHANGE % of its chunks gets a full point, then two incremental
 * points that each change CHANGE % of the chunks: once as one contiguous run (a database file, a
 * log), once scattered uniformly (the worst case for any tree). Chunks are distinct but
 * compressible (a counter), so the repository stays small and the time goes to hashing; the
 * index cost does not depend on the content. Reported per point: the root file, the tree nodes
 * the point stored (from the new repository index entries), and what format 1 would write
 * (32 bytes per chunk of the whole disk). Prints one JSON object; nothing is asserted.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, Repository, type Manifest } from '../../backend/src/repository';
import { BlobType } from '../../backend/src/repository/pack';
import { listIndexFiles, readIndexFile } from '../../backend/src/repository/repoIndex';
import { arg } from './common';

const KiB = 1024;
const GiB = 1 << 30;

let counter = 0;
function uniqueChunk(size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(++counter, 0);
  b.writeUInt32LE(process.pid, 4);
  return b;
}

async function treeBytesSince(repo: Repository, seen: Set<string>): Promise<{ nodes: number; bytes: number }> {
  let nodes = 0;
  let bytes = 0;
  for (const name of await listIndexFiles(repo.dir)) {
    if (seen.has(name)) continue;
    seen.add(name);
    for (const p of (await readIndexFile(repo.dir, name)).packs) {
      for (const e of p.entries) {
        if (e.type !== BlobType.TreeNode) continue;
        nodes++;
        bytes += e.storedLength;
      }
    }
  }
  return { nodes, bytes };
}

async function point(repo: Repository, parent: Manifest | null, size: number, chunks: Iterable<number>): Promise<{ m: Manifest; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const base = parent ? await repo.readIndex(parent.pointId, 'vda') : undefined;
  const w = await repo.beginPoint({ vm: { key: 'big', name: 'big' }, pointId: newPointId(), createdAt: new Date(), parentPointId: parent?.pointId ?? null });
  const d = w.beginDisk({ device: 'vda', virtualSize: size, ...(base ? { base } : {}) });
  const pending: Array<Promise<unknown>> = [];
  for (const i of chunks) {
    pending.push(d.putChunk(i, uniqueChunk(repo.chunkSize)));
    if (pending.length >= 32) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await d.finish();
  const m = await w.commit({
    disks: [{ device: 'vda', node: 'n', format: 'raw', mode: parent ? 'incremental' : 'full', reason: parent ? 'incremental' : 'first-backup', bitmap: 'b', bitmapPersistent: true, bytesRead: 0 }],
    consistency: 'crash',
    vmDefinition: null,
  });
  return { m, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function main(): Promise<void> {
  const size = arg('disk-gib', 1024) * GiB;
  const pct = arg('change-pct', 1);
  const chunkSize = arg('chunk-kib', 256) * KiB;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-index-bench-'));
  const repo = await Repository.init(path.join(dir, 'repo'), { version: 2, chunkSize });
  try {
    const count = Math.ceil(size / chunkSize);
    const changed = Math.round((count * pct) / 100);
    const seen = new Set(await listIndexFiles(repo.dir));
    const run = (start: number): number[] => Array.from({ length: changed }, (_, k) => start + k);
    const full = await point(repo, null, size, run(0));
    const fullTree = await treeBytesSince(repo, seen);
    const rootOf = async (m: Manifest): Promise<number> => (await fs.stat(path.join(repo.dir, 'points', m.pointId, m.disks[0]?.index.file ?? ''))).size;
    const contiguous = await point(repo, full.m, size, run(Math.floor(count / 2)));
    const contiguousTree = await treeBytesSince(repo, seen);
    const scatteredSet = new Set<number>();
    while (scatteredSet.size < changed) scatteredSet.add(randomInt(0, count));
    const scattered = await point(repo, contiguous.m, size, [...scatteredSet].sort((a, b) => a - b));
    const scatteredTree = await treeBytesSince(repo, seen);
    const fanout = repo.config.treeFanout ?? 0;
    const perPoint = async (p: { m: Manifest; seconds: number }, tree: { nodes: number; bytes: number }): Promise<Record<string, number>> => {
      const root = await rootOf(p.m);
      return { rootBytes: root, treeNodesStored: tree.nodes, treeBytesStored: tree.bytes, indexBytes: root + tree.bytes, seconds: p.seconds };
    };
    const result = {
      bench: 'index bytes per point (format 2)',
      disk: { virtualBytes: size, chunkSize, chunks: count, treeFanout: fanout },
      changePerPoint: { percent: pct, chunks: changed, bytes: changed * chunkSize },
      full: await perPoint(full, fullTree),
      incrementalContiguous: await perPoint(contiguous, contiguousTree),
      incrementalScattered: await perPoint(scattered, scatteredTree),
      format1IndexBytesPerPoint: 32 + 32 * count,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
