/**
 * Benchmark: a week of daily incrementals through the installed command.
 *
 *   node dist/test/bench/dailyBench.js [--disk-gib 2 --data-gib 1 --days 7 --writes 20]
 *
 * For each repository configuration (format 1 with 1 MiB chunks as today's reference; format 2
 * with 256 KiB, 512 KiB and 1 MiB chunks), a real QEMU VM with a DISK GiB qcow2 disk holding
 * DATA GiB of incompressible data gets a full backup, then DAYS times: WRITES × 1 MiB of random
 * data at random 4 KiB-aligned offsets, and an incremental run as an operator runs it:
 * `node dist/backend/src/cli/main.js backup --repo … --qmp … --vm …` (process start-up
 * included). Reported per configuration: the incremental's wall time (median, max), the stored
 * growth per day (repository size, `du -sb`), the index bytes per point, and the growth against
 * the 21.2 MiB a day that a 64 KiB-granule tool (virtnbdbackup) stores for the same writes
 * (20 writes × 17 granules × 64 KiB). Prints one JSON object; nothing is asserted.
 */
import { randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, type RepoVersion } from '../../backend/src/repository';
import { TestVm } from '../helpers/qemuVm';
import { arg, cli, du, fillImage, settle } from './common';

const KiB = 1024;
const MiB = 1 << 20;
const GiB = 1 << 30;
const DISK = 'virtio-disk0';
/** virtnbdbackup's daily growth for 20 × 1 MiB writes at 4 KiB-aligned offsets, 64 KiB granules. */
const GRANULE_REFERENCE_BYTES = 20 * 17 * 64 * KiB;

interface Config {
  format: RepoVersion;
  chunkKiB: number;
}

/** Bytes of index data the point added: its index files, and (format 2) the tree nodes in the
 *  packs it wrote — the point's manifest gives the root; nodes are counted from the repository's
 *  index files written since `seen`. */
async function indexBytes(repo: Repository, pointId: string, seenIndexFiles: Set<string>): Promise<number> {
  const m = await repo.readManifest(pointId);
  let bytes = 0;
  for (const d of m.disks) bytes += (await fs.stat(path.join(repo.dir, 'points', pointId, d.index.file))).size;
  if (repo.formatVersion === 1) return bytes;
  const { listIndexFiles, readIndexFile } = await import('../../backend/src/repository/repoIndex');
  for (const name of await listIndexFiles(repo.dir)) {
    if (seenIndexFiles.has(name)) continue;
    seenIndexFiles.add(name);
    for (const p of (await readIndexFile(repo.dir, name)).packs) for (const e of p.entries) if (e.type === 2) bytes += e.storedLength;
  }
  return bytes;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function runConfig(c: Config, diskBytes: number, dataBytes: number, days: number, writes: number): Promise<Record<string, unknown>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-daily-'));
  let vm: TestVm | undefined;
  try {
    vm = await TestVm.create(path.join(dir, 'vm'), [{ id: DISK, format: 'qcow2', size: diskBytes }]);
    await vm.quit();
    await fillImage(vm.diskFile(DISK), diskBytes, dataBytes, dir);
    await vm.start();
    const repoDir = path.join(dir, 'repo');
    await cli(['repo', 'init', '--repo', repoDir, '--format', String(c.format), '--chunk-size', `${c.chunkKiB}K`]);
    const backup = ['backup', '--repo', repoDir, '--qmp', vm.productQmp, '--vm', 'bench', '--scratch', dir, '--json'];
    await settle();
    const full = await cli(backup);
    const repo = await Repository.open(repoDir);
    const { listIndexFiles } = await import('../../backend/src/repository/repoIndex');
    const seen = new Set(c.format === 2 ? await listIndexFiles(repoDir) : []);
    const perDay: Array<{ seconds: number; growthBytes: number; indexBytes: number; bytesRead: number }> = [];
    try {
      for (let day = 1; day <= days; day++) {
        for (let w = 0; w < writes; w++) await vm.writeRandom(DISK, randomInt(0, (diskBytes - MiB) / (4 * KiB)) * 4 * KiB, MiB);
        await settle();
        const before = await du(repoDir);
        const inc = await cli(backup);
        const growth = (await du(repoDir)) - before;
        const result = JSON.parse(inc.out) as { point: string; disks: Array<{ mode: string; bytesRead: number }> };
        if (result.disks.some((d) => d.mode !== 'incremental')) throw new Error(`day ${day}: not an incremental: ${inc.out}`);
        perDay.push({ seconds: inc.seconds, growthBytes: growth, indexBytes: await indexBytes(repo, result.point, seen), bytesRead: result.disks.reduce((n, d) => n + d.bytesRead, 0) });
      }
    } finally {
      await repo.close();
    }
    const growth = perDay.reduce((n, d) => n + d.growthBytes, 0) / perDay.length;
    return {
      format: c.format,
      chunkSize: c.chunkKiB * KiB,
      fullSeconds: full.seconds,
      incrementalSeconds: { median: median(perDay.map((d) => d.seconds)), max: Math.max(...perDay.map((d) => d.seconds)) },
      growthPerDayBytes: Math.round(growth),
      growthPerDayMiB: growth / MiB,
      growthVsGranuleTool: growth / GRANULE_REFERENCE_BYTES,
      indexBytesPerPoint: Math.round(perDay.reduce((n, d) => n + d.indexBytes, 0) / perDay.length),
      bytesReadPerDay: Math.round(perDay.reduce((n, d) => n + d.bytesRead, 0) / perDay.length),
      days: perDay,
    };
  } finally {
    await vm?.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 2) * GiB;
  const dataBytes = arg('data-gib', 1) * GiB;
  const days = arg('days', 7);
  const writes = arg('writes', 20);
  const configs: Config[] = [
    { format: 1, chunkKiB: 1024 },
    { format: 2, chunkKiB: 256 },
    { format: 2, chunkKiB: 512 },
    { format: 2, chunkKiB: 1024 },
  ];
  const results = [];
  for (const c of configs) results.push(await runConfig(c, diskBytes, dataBytes, days, writes));
  const out = {
    bench: 'daily incrementals through the installed command',
    machine: { cpus: os.cpus().length, node: process.version },
    workload: { diskBytes, dataBytes, days, writesPerDay: writes, writeBytes: MiB, alignment: 4 * KiB },
    granuleToolGrowthPerDayBytes: GRANULE_REFERENCE_BYTES,
    targets: { growthVsGranuleTool: '<= 1.2', incrementalSeconds: '<= 0.5' },
    results,
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
