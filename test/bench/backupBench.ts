/**
 * Benchmark: full and incremental backup against baselines measured in the same run.
 *
 *   npm run bench [-- --disk-gib 2 --data-gib 1]
 *
 * A qcow2 disk of DISK GiB holding DATA GiB of incompressible data runs in a real QEMU. Measured:
 *  - nbdcopy copying a point-in-time NBD export of the disk to a local raw file (baseline);
 *  - our full backup (QMP transaction + fleece + NBD + hash/compress/store);
 *  - our incremental after the guest rewrote 1% of the disk as 20 × 1 MiB at random offsets;
 *  - repository size after each.
 * Prints one JSON object. Nothing is asserted: ratios are reported against the targets.
 */
// as the CLI does (backend/src/cli/main.ts): a deeper libuv threadpool for chunk I/O
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup } from '../../backend/src/backup';
import { LocalHost } from '../../backend/src/hosts';
import { BlockApi, BlockJob, QmpClient } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { restoreToFile } from '../../backend/src/restore';
import { runTool } from '../../backend/src/util/exec';
import { TestVm } from '../helpers/qemuVm';
import { arg, du, fillImage, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** nbdcopy from the same kind of point-in-time export our backup reads (fleece over NBD). */
async function nbdcopyBaseline(qmpPath: string, dir: string, size: number): Promise<{ plain: number; flush: number }> {
  const qmp = await QmpClient.connectUnix(qmpPath);
  const api = new BlockApi(qmp);
  const scratch = path.join(dir, 'bench-fleece.qcow2');
  const sock = path.join(dir, 'bench-nbd.sock');
  const out = path.join(dir, 'nbdcopy-out.raw');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', scratch, String(size)]);
  await api.addOverlay({ nodeName: 'bench-fleece', filename: scratch, backingNode: 'libvirt-1-format' });
  const job = BlockJob.watch(qmp, 'bench-job');
  try {
    await api.transaction([{ kind: 'fleeceBackup', jobId: 'bench-job', device: 'libvirt-1-format', target: 'bench-fleece' }]);
    await api.nbdServerStart(sock);
    await api.exportAdd({ id: 'bench-export', nodeName: 'bench-fleece', exportName: 'bench' });
    const uri = `nbd+unix:///bench?socket=${sock}`;
    const plain = await timed(() => runTool('nbdcopy', [uri, out], { timeoutMs: 600_000 }));
    await fs.rm(out, { force: true });
    // --flush: the copy is on disk when nbdcopy exits, as a backup's chunks are when it commits
    const flush = await timed(() => runTool('nbdcopy', ['--flush', uri, out], { timeoutMs: 600_000 }));
    return { plain: plain.seconds, flush: flush.seconds };
  } finally {
    await api.exportDel('bench-export', { hard: true }).catch(() => undefined);
    await job.cancel({ timeoutMs: 30_000 }).catch(() => undefined);
    job.dispose();
    await api.deleteNode('bench-fleece').catch(() => undefined);
    await api.nbdServerStop().catch(() => undefined);
    await fs.rm(scratch, { force: true });
    await fs.rm(out, { force: true });
    await qmp.close();
  }
}

/** CPU seconds used by this process and by every qemu-system process (the VM serving NBD). */
async function cpuSnapshot(): Promise<{ self: NodeJS.CpuUsage; qemu: number }> {
  return { self: process.cpuUsage(), qemu: await qemuCpu() };
}

async function cpuSince(s: { self: NodeJS.CpuUsage; qemu: number }): Promise<{ backup: number; qemu: number }> {
  const d = process.cpuUsage(s.self);
  return { backup: (d.user + d.system) / 1e6, qemu: (await qemuCpu()) - s.qemu };
}

async function qemuCpu(): Promise<number> {
  let ticks = 0;
  for (const pid of await fs.readdir('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \(([^)]*)\) (.*)$/.exec(stat);
    if (!m || !(m[1] ?? '').startsWith('qemu-system')) continue;
    const f = (m[2] ?? '').split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

/** Restore of the last point to a raw file against `qemu-img convert` of the VM's disk (the same
 *  guest data) to a raw file; both flushed at the end (convert: `-t writeback`), same cache state. */
async function restoreBaseline(vm: TestVm, repo: Repository, pointId: string, dir: string): Promise<{ seconds: number; bytesWritten: number; qemuImgConvertSeconds: number }> {
  const out = path.join(dir, 'restore.raw');
  const ours = await timed(() => restoreToFile({ repository: repo, pointId, device: 'virtio-disk0', out, format: 'raw' }));
  await fs.rm(out, { force: true });
  await vm.quit();
  const convert = await timed(() => runTool('qemu-img', ['convert', '-t', 'writeback', '-f', 'qcow2', '-O', 'raw', vm.diskFile('virtio-disk0'), out], { timeoutMs: 600_000 }));
  await fs.rm(out, { force: true });
  return { seconds: ours.seconds, bytesWritten: ours.value.bytesWritten, qemuImgConvertSeconds: convert.seconds };
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 2) * GiB;
  const dataBytes = arg('data-gib', 1) * GiB;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bench-'));
  let vm: TestVm | undefined;
  let repo: Repository | undefined;
  try {
    vm = await TestVm.create(path.join(dir, 'vm'), [{ id: 'virtio-disk0', format: 'qcow2', size: diskBytes }]);
    await vm.quit();
    const compressible = process.argv.includes('--compressible');
    await fillImage(vm.diskFile('virtio-disk0'), diskBytes, dataBytes, dir, compressible ? 'compressible' : 'random');
    await vm.start();

    const nbdcopy = await nbdcopyBaseline(vm.productQmp, dir, diskBytes);

    const format = arg('format', 2) === 1 ? 1 : 2;
    const chunkKiB = arg('chunk-kib', 0);
    const encrypted = format === 2 && arg('encrypted', 0) === 1;
    repo = await Repository.init(path.join(dir, 'repo'), {
      version: format,
      ...(chunkKiB > 0 ? { chunkSize: chunkKiB * 1024 } : {}),
      ...(format === 2 && arg('pack-mib', 0) > 0 ? { packSize: arg('pack-mib', 0) * MiB } : {}),
      ...(encrypted ? { encryption: 'aes-256-gcm', passphrase: 'bench passphrase' } : {}),
    });
    const qmp = await QmpClient.connectUnix(vm.productQmp);
    const backup = (): ReturnType<typeof runBackup> =>
      runBackup({ vm: { key: 'bench', name: 'bench' }, qmp, host: new LocalHost(), repository: repo as Repository, scratchDir: dir });
    const cpu0 = await cpuSnapshot();
    const full = await timed(backup);
    const fullCpu = await cpuSince(cpu0);
    const repoAfterFull = await du(repo.dir);

    const writes = 20;
    for (let i = 0; i < writes; i++) {
      await vm.writeRandom('virtio-disk0', randomInt(0, diskBytes / MiB - 1) * MiB + randomInt(0, 16) * 4096, MiB);
    }
    const guestWritten = writes * MiB;
    const inc = await timed(backup);
    const repoAfterInc = await du(repo.dir);
    await qmp.close();
    const restore = await restoreBaseline(vm, repo, inc.value.manifest.pointId, dir);

    const fullDisk = full.value.manifest.disks[0];
    const incDisk = inc.value.manifest.disks[0];
    const fullMBps = (fullDisk?.bytesRead ?? 0) / MiB / full.seconds;
    const mibps = (seconds: number): number => dataBytes / MiB / seconds;
    const result = {
      machine: { cpus: os.cpus().length, node: process.version },
      disk: { virtualBytes: diskBytes, dataBytes },
      repository: { format: repo.formatVersion, chunkSize: repo.chunkSize, packSize: repo.config.packSize ?? null, encrypted: repo.encrypted },
      data: compressible ? 'compressible' : 'random',
      nbdcopy: { seconds: nbdcopy.plain, MiBps: mibps(nbdcopy.plain) },
      nbdcopyFlush: { seconds: nbdcopy.flush, MiBps: mibps(nbdcopy.flush) },
      full: { seconds: full.seconds, bytesRead: fullDisk?.bytesRead, MiBps: fullMBps, repoBytes: repoAfterFull, cpuSeconds: fullCpu },
      incremental: {
        seconds: inc.seconds,
        mode: incDisk?.mode,
        bytesRead: incDisk?.bytesRead,
        guestBytesWritten: guestWritten,
        repoGrowthBytes: repoAfterInc - repoAfterFull,
      },
      restoreToRaw: restore,
      ratios: {
        restoreVsQemuImgConvert: restore.qemuImgConvertSeconds / restore.seconds,
        // same data, same kind of export: the ratio of times is the ratio of throughputs
        fullVsNbdcopy: nbdcopy.plain / full.seconds,
        fullVsNbdcopyFlush: nbdcopy.flush / full.seconds,
        incrementalVsFullTime: inc.seconds / full.seconds,
        repoGrowthVsWritten: (repoAfterInc - repoAfterFull) / guestWritten,
      },
      targets: { fullVsNbdcopy: encrypted ? '>= 0.6' : '>= 0.8', incrementalVsFullTime: '<= 0.10', restoreVsQemuImgConvert: '>= 0.8' },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await repo?.close();
    await vm?.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
