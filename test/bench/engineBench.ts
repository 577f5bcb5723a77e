/**
 * Benchmark: the engine method (engine backup API + imageio) against the QMP method and nbdcopy,
 * all in the same run on the same data.
 *
 *   npm run bench:engine [-- --disk-gib 2 --data-gib 1 --tls 1 --cluster 4.6]
 *
 * A qcow2 disk of DISK GiB holding DATA GiB of incompressible data, in a VM of the engine
 * simulator (real QEMU). Measured:
 *  - nbdcopy of the disk's guest view (qemu-nbd on the image, the VM down) to a raw file;
 *  - engine method: full, then an incremental after the guest rewrote 1 % of the disk
 *    (20 × 1 MiB at random offsets), the VM running;
 *  - QMP method: the same, into its own repository (no dedup against the engine's points).
 * `--cluster`: the cluster level, 4.7 (default: hybrid, snapshot-based engine backups) or 4.6
 * (StartVmBackup: scratch disks on the running VM).
 * Prints one JSON object. Nothing is asserted: ratios are reported against the targets.
 */
// as the CLI does (backend/src/cli/main.ts): a deeper libuv threadpool for chunk I/O
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { spawn } from 'child_process';
import { randomBytes, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup, type EngineVmBackupResult } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { runTool } from '../../backend/src/util/exec';
import { EngineSim, type SimVm } from '../engine-sim';
import { waitForSockets } from '../helpers/waitForSockets';
import { arg, du, fillImage, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** nbdcopy of the image's guest view through qemu-nbd (the same data the backups read). */
async function nbdcopyBaseline(image: string, dir: string): Promise<number> {
  const sock = path.join(dir, 'bench-nbd.sock');
  const out = path.join(dir, 'nbdcopy-out.raw');
  const proc = spawn('qemu-nbd', ['--read-only', '--shared', '8', '--persistent', '--format', 'qcow2', '--socket', sock, '--export-name', 'bench', image], { stdio: 'ignore' });
  try {
    await waitForSockets([sock], () => (proc.exitCode !== null ? `qemu-nbd exited with ${proc.exitCode}` : undefined), 30_000);
    const r = await timed(() => runTool('nbdcopy', [`nbd+unix:///bench?socket=${sock}`, out], { timeoutMs: 600_000 }));
    return r.seconds;
  } finally {
    proc.kill('SIGTERM');
    await fs.rm(out, { force: true });
  }
}

async function rewriteOnePercent(sim: EngineSim, vm: SimVm, diskBytes: number): Promise<number> {
  const d = vm.disks[0] as SimVm['disks'][number];
  const writes = Math.max(1, Math.round((diskBytes * 0.01) / MiB));
  for (let i = 0; i < writes; i++) await sim.guestWrite(vm.id, d.id, randomInt(0, diskBytes / MiB - 1) * MiB + randomInt(0, 16) * 4096, randomBytes(MiB));
  return writes * MiB;
}

function summary(r: { seconds: number; value: EngineVmBackupResult }, dataBytes: number): Record<string, unknown> {
  const d = r.value.manifest.disks[0];
  return { seconds: r.seconds, method: r.value.method, mode: d?.mode, reason: d?.reason, bytesRead: d?.bytesRead, MiBps: (d?.bytesRead ?? dataBytes) / MiB / r.seconds };
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 2) * GiB;
  const dataBytes = arg('data-gib', 1) * GiB;
  const tls = arg('tls', 0) === 1;
  const clusterLevel = arg('cluster', 4.7) < 4.7 ? '4.6' : '4.7';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-ebench-'));
  let sim: EngineSim | undefined;
  let engine: EngineClient | undefined;
  const repos: Repository[] = [];
  try {
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), seed: false, tls });
    sim.backup.setClusterVersion(clusterLevel);
    const vm = await sim.addVm({ name: 'bench01', disks: [{ sizeBytes: diskBytes, format: 'cow' }], running: false });
    const image = (vm.disks[0] as SimVm['disks'][number]).file;
    await fillImage(image, diskBytes, dataBytes, dir, 'random');
    const nbdcopy = await nbdcopyBaseline(image, dir);

    engine = new EngineClient({ baseUrl: sim.baseUrl, ...(sim.caFile ? { caFile: sim.caFile } : {}), auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    await engine.startVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['up'], { timeoutMs: 120_000 });

    const run = async (method: 'engine' | 'qmp'): Promise<Record<string, unknown>> => {
      const repo = await Repository.init(path.join(dir, `repo-${method}`));
      repos.push(repo);
      const backup = (): Promise<EngineVmBackupResult> =>
        engineVmBackup({ engine: engine as EngineClient, vmId: vm.id, repository: repo, host: new LocalHost({ qmpDir: (sim as EngineSim).qmpDir }), scratchDir: dir, method });
      const full = await timed(backup);
      const repoAfterFull = await du(repo.dir);
      const written = await rewriteOnePercent(sim as EngineSim, vm, diskBytes);
      const inc = await timed(backup);
      return {
        full: { ...summary(full, dataBytes), repoBytes: repoAfterFull },
        incremental: { ...summary(inc, dataBytes), guestBytesWritten: written, repoGrowthBytes: (await du(repo.dir)) - repoAfterFull },
        incrementalVsFullTime: inc.seconds / full.seconds,
      };
    };
    const viaEngine = await run('engine');
    const viaQmp = await run('qmp');
    const sec = (r: Record<string, unknown>, k: 'full' | 'incremental'): number => (r[k] as { seconds: number }).seconds;
    const result = {
      machine: { cpus: os.cpus().length, node: process.version },
      disk: { virtualBytes: diskBytes, dataBytes },
      imageio: tls ? 'https' : 'http',
      engineMode: clusterLevel === '4.7' ? 'hybrid (cluster 4.7)' : 'StartVmBackup (cluster 4.6)',
      nbdcopy: { seconds: nbdcopy, MiBps: dataBytes / MiB / nbdcopy },
      engine: viaEngine,
      qmp: viaQmp,
      ratios: {
        // same data: the ratio of times is the ratio of throughputs
        engineFullVsNbdcopy: nbdcopy / sec(viaEngine, 'full'),
        qmpFullVsNbdcopy: nbdcopy / sec(viaQmp, 'full'),
        engineFullVsQmpFull: sec(viaQmp, 'full') / sec(viaEngine, 'full'),
        engineIncrementalVsFullTime: sec(viaEngine, 'incremental') / sec(viaEngine, 'full'),
        qmpIncrementalVsFullTime: sec(viaQmp, 'incremental') / sec(viaQmp, 'full'),
        engineIncrementalVsQmpIncremental: sec(viaQmp, 'incremental') / sec(viaEngine, 'incremental'),
      },
      targets: { engineIncrementalVsFullTime: '<= 0.10' },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const r of repos) await r.close().catch(() => undefined);
    await engine?.close().catch(() => undefined);
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
