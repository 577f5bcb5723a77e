/**
 * Benchmark: reading a whole point through the NBD export against restoring it to a file, in
 * the same run (the target: the export at least 0.8× the restore).
 *
 *   npm run build && node dist/test/bench/exportBench.js [--disk-gib 1] [--format 2] [--encrypted 1] [--runs 2]
 *
 * A point of a DISK GiB disk of mixed data — 16 MiB runs of random bytes, of text-like bytes
 * (about 3:1 with zstd) and of zeroes, a third each — is written with the repository API. Then,
 * each the best of RUNS, from the same page-cache state (sync first):
 *  - restore: restoreToFile of the disk to a raw file (zero chunks skipped, fsync at the end);
 *  - export: `olvm-backup export` serving the disk on a unix socket (its own process, started
 *    once for all runs), `nbdcopy --flush` copying it to a raw file (holes from base:allocation
 *    skipped, flushed at the end).
 * MiB/s count the disk's virtual size. Prints one JSON object; nothing is asserted.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { newPointId, Repository, type Manifest } from '../../backend/src/repository';
import { restoreToFile } from '../../backend/src/restore';
import { runTool } from '../../backend/src/util/exec';
import { arg, compressible, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;
const PASSPHRASE = 'export bench passphrase';
const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

async function makePoint(repo: Repository, diskBytes: number): Promise<Manifest> {
  const at = new Date();
  const w = await repo.beginPoint({ vm: { key: 'bench', name: 'bench' }, pointId: newPointId(at), createdAt: at, parentPointId: null });
  const d = w.beginDisk({ device: 'vda', virtualSize: diskBytes });
  const cs = repo.chunkSize;
  const run = 16 * MiB;
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < d.count; i++) {
    const kind = Math.floor((i * cs) / run) % 3;
    if (kind === 2) {
      d.putZero(i);
      continue;
    }
    const len = d.chunkLength(i);
    pending.push(d.putChunk(i, kind === 0 ? randomBytes(len) : compressible(len)));
    if (pending.length >= 16) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await d.finish();
  return w.commit({
    disks: [{ device: 'vda', node: 'bench', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'bench', bitmapPersistent: false, bytesRead: diskBytes, meta: {} }],
    consistency: 'crash',
    vmDefinition: null,
  });
}

/** `olvm-backup export` started and ready; stop() ends it with SIGTERM. */
async function startExport(repoDir: string, pointId: string, socket: string): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'export', '--repo', repoDir, '--point', pointId, '--disk', 'vda', '--socket', socket, '--json'], {
    env: { ...process.env, OLVM_BACKUP_REPO_PASSPHRASE: PASSPHRASE },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await Promise.race([
    new Promise<string>((resolve) => readline.createInterface({ input: child.stdout }).once('line', resolve)),
    exited.then((code) => Promise.reject(new Error(`olvm-backup export exited ${code}`))),
    new Promise((_, reject) => setTimeout(() => reject(new Error('olvm-backup export not ready within 60 s')), 60_000).unref()),
  ]);
  return {
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`olvm-backup export exited ${code} on SIGTERM`);
    },
  };
}

async function best(runs: number, fn: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, await fn());
  return min;
}

const round = (n: number): number => Math.round(n * 100) / 100;

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 1) * GiB;
  const version = arg('format', 2) === 1 ? 1 : 2;
  const encrypted = arg('encrypted', 0) === 1;
  const runs = arg('runs', 2);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-export-bench-'));
  let repo: Repository | undefined;
  try {
    repo = await Repository.init(path.join(dir, 'repo'), { version, ...(encrypted ? { encryption: 'aes-256-gcm' as const, passphrase: PASSPHRASE } : {}) });
    const point = await makePoint(repo, diskBytes);
    const out = path.join(dir, 'out.raw');
    const restoreSeconds = await best(runs, async () => {
      await fs.rm(out, { force: true });
      const t = await timed(() => restoreToFile({ repository: repo as Repository, pointId: point.pointId, device: 'vda', out, format: 'raw' }));
      return t.seconds;
    });
    const restored = await fs.readFile(out);
    await fs.rm(out, { force: true });
    const socket = path.join(dir, 'export.sock');
    let copiedSame = true;
    // one server for every run, as an operator's export serves one client after another
    const server = await startExport(repo.dir, point.pointId, socket);
    let exportSeconds: number;
    try {
      exportSeconds = await best(runs, async () => {
        await fs.rm(out, { force: true });
        const t = await timed(() => runTool('nbdcopy', ['--flush', `nbd+unix:///?socket=${socket}`, out], { timeoutMs: 600_000 }));
        copiedSame &&= (await fs.readFile(out)).equals(restored);
        return t.seconds;
      });
    } finally {
      await server.stop();
    }
    const mib = diskBytes / MiB;
    const exportNbdcopyMiBps = round(mib / exportSeconds);
    const restoreToFileMiBps = round(mib / restoreSeconds);
    process.stdout.write(
      `${JSON.stringify(
        {
          exportNbdcopyMiBps,
          restoreToFileMiBps,
          ratio: round(exportNbdcopyMiBps / restoreToFileMiBps),
          exportSeconds: round(exportSeconds),
          restoreSeconds: round(restoreSeconds),
          sameBytes: copiedSame,
          disk: { sizeGiB: diskBytes / GiB, chunkSize: repo.chunkSize, format: version, encrypted, layout: '16 MiB runs: random, text-like, zero (a third each)' },
          runs,
          machine: { cpus: os.cpus().length, loadAverage: os.loadavg().map(round) },
          target: 'export read by nbdcopy at least 0.8× the restore to a file',
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
