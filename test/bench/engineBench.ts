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
 * The simulator runs in its own process (its CLI, test/engine-sim/main.js), as an engine does:
 * in this process its imageio serving would share our event loop and measure the bench, not
 * the product. It is prepared in-process first (VM, cluster level: test hooks the CLI lacks),
 * closed, and the CLI restarted on the same data dir; the guest's 1 % rewrite goes through the
 * VM's QMP socket (qemu-io on the virtio backend, as the simulator's guestWrite does).
 * Each backup reports the CPU it cost us and the simulator process (`cpu`); each engine backup
 * also where its waits went (`engineWaits`): the engine's own time
 * per phase (its `modification_date`) vs our polling lag, and the simulator's modelled delays.
 * Prints one JSON object. Nothing is asserted: ratios are reported against the targets.
 */
// as the CLI does (backend/src/cli/main.ts): a deeper libuv threadpool for chunk I/O
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup, type EngineVmBackupResult } from '../../backend/src/backup';
import { EngineClient, type BackupPhase, type ImageTransfer, type ImageTransferPhase, type PollOptions, type VmBackup } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { QmpClient } from '../../backend/src/qmp';
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

/** The simulator's CLI in its own process on a prepared data dir: its JSON line, and the process. */
interface SimProcess {
  proc: ChildProcess;
  info: { baseUrl: string; caFile: string | null; users: { admin: { name: string; password: string } }; qmpDir: string };
}

async function startSimProcess(dataDir: string, tls: boolean): Promise<SimProcess> {
  const main = path.join(__dirname, '..', 'engine-sim', 'main.js');
  const proc = spawn(process.execPath, [main, dataDir, '--no-seed', ...(tls ? ['--tls'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`engine-sim printed nothing within 120 s: ${stderr}`)), 120_000);
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl));
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`engine-sim exited with ${code}: ${stderr}`));
      });
    });
    proc.stdout?.resume(); // nothing more is read: keep the pipe from filling
    return { proc, info: JSON.parse(line) as SimProcess['info'] };
  } catch (err) {
    await stopSimProcess(proc);
    throw err;
  }
}

/** SIGTERM (the simulator stops its QEMUs and servers), SIGKILL if it has not gone in 60 s. */
async function stopSimProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const force = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  try {
    await gone;
  } finally {
    clearTimeout(force);
  }
}

/** The guest rewrites 1 % of the disk (1 MiB writes at random offsets) through the VM's QMP
 *  socket, as the simulator's guestWrite does; the socket is free again before a backup. */
async function rewriteOnePercent(qmpDir: string, vmId: string, diskId: string, diskBytes: number, tmp: string): Promise<number> {
  const writes = Math.max(1, Math.round((diskBytes * 0.01) / MiB));
  const file = path.join(tmp, 'guest-write.bin');
  const qmp = await QmpClient.connectUnix(path.join(qmpDir, `${vmId}.qmp`));
  try {
    for (let i = 0; i < writes; i++) {
      await fs.writeFile(file, randomBytes(MiB));
      const offset = randomInt(0, diskBytes / MiB - 1) * MiB + randomInt(0, 16) * 4096;
      const out = await qmp.execute('human-monitor-command', { 'command-line': `qemu-io -d /machine/peripheral/ua-${diskId}/virtio-backend "write -s ${file} ${offset} ${MiB}"` });
      if (/fail|error|invalid|not found/i.test(out)) throw new Error(`guest write at ${offset} failed: ${out.trim()}`);
    }
    await qmp.execute('human-monitor-command', { 'command-line': `qemu-io -d /machine/peripheral/ua-${diskId}/virtio-backend "flush"` });
  } finally {
    await qmp.close();
    await fs.rm(file, { force: true });
  }
  return writes * MiB;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (its own, not
 *  its children's: the simulator's QEMUs are not counted). */
async function procCpuSeconds(pid: number, ticksPerSecond: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond; // utime, stime: fields 14 and 15
}

/** Runs `fn` timed, with the CPU seconds it cost this process and the simulator's process:
 *  on this 2-core machine the engine's imageio competes with us for CPU, a real one does not. */
async function timedCpu<T>(fn: () => Promise<T>, simPid: number, tick: number): Promise<{ seconds: number; value: T; cpu: { oursSeconds: number; engineSimSeconds: number } }> {
  const sim0 = await procCpuSeconds(simPid, tick);
  let ours0 = process.cpuUsage();
  const r = await timed(async () => {
    ours0 = process.cpuUsage(); // after timed's sync
    return fn();
  });
  const ours = process.cpuUsage(ours0);
  return { ...r, cpu: { oursSeconds: (ours.user + ours.system) / 1e6, engineSimSeconds: (await procCpuSeconds(simPid, tick)) - sim0 } };
}

interface EngineWait {
  what: string;
  /** from our request (or the wait's start) until we saw the phase */
  ms: number;
  /** from our request until the engine entered the phase (its modification_date); backups only */
  engineMs?: number;
}

/** An EngineClient that times the waits the engine method makes (same process, no extra reads). */
class TimedEngineClient extends EngineClient {
  waits: EngineWait[] = [];
  private requested = new Map<string, number>();

  override async startBackup(...a: Parameters<EngineClient['startBackup']>): Promise<VmBackup> {
    const t0 = Date.now();
    const b = await super.startBackup(...a);
    this.requested.set(`${b.id}:ready`, t0);
    return b;
  }

  override async finalizeBackup(vmId: string, backupId: string, opts?: Parameters<EngineClient['finalizeBackup']>[2]): Promise<void> {
    this.requested.set(`${backupId}:succeeded`, Date.now());
    await super.finalizeBackup(vmId, backupId, opts);
  }

  override async waitForBackupPhase(vmId: string, backupId: string, phases: readonly BackupPhase[], opts: PollOptions & { goneIsAnswer?: boolean }): Promise<VmBackup | null> {
    const key = `${backupId}:${phases.join('|')}`;
    const t0 = this.requested.get(key) ?? Date.now();
    const b = await super.waitForBackupPhase(vmId, backupId, phases, opts);
    const seen = Date.now();
    const entered = b?.modificationDate?.getTime();
    this.waits.push({ what: `backup ${phases.join('|')}`, ms: seen - t0, ...(entered !== undefined ? { engineMs: Math.min(entered, seen) - t0 } : {}) });
    return b;
  }

  override async createImageTransfer(...a: Parameters<EngineClient['createImageTransfer']>): Promise<ImageTransfer> {
    const t0 = Date.now();
    const t = await super.createImageTransfer(...a);
    this.requested.set(`${t.id}:start`, t0);
    return t;
  }

  override async finalizeImageTransfer(id: string, opts?: Parameters<EngineClient['finalizeImageTransfer']>[1]): Promise<void> {
    this.requested.set(`${id}:end`, Date.now());
    await super.finalizeImageTransfer(id, opts);
  }

  override async waitForTransferPhase(id: string, phases: readonly ImageTransferPhase[], opts: PollOptions): Promise<ImageTransfer | null> {
    const which = phases.includes('transferring') ? 'start' : 'end';
    const t0 = this.requested.get(`${id}:${which}`) ?? Date.now();
    const t = await super.waitForTransferPhase(id, phases, opts);
    this.waits.push({ what: `transfer ${which === 'start' ? 'transferring' : 'finished'}`, ms: Date.now() - t0 });
    return t;
  }

  take(): EngineWait[] {
    const w = this.waits;
    this.waits = [];
    return w;
  }
}

/** The simulator's modelled delays (its defaults, not changed here): Backups.stepDelayMs per
 *  phase step (initializing, starting when live, finalizing), Transfers.initDelayMs before a
 *  transfer turns `transferring`. */
const SIM_STEP_MS = 100;
const SIM_TRANSFER_INIT_MS = 150;

/** Where an engine backup's waits went: the engine's part (its phase times; for transfers the
 *  whole wait, which our poll lag is part of) and our polling lag on the backup phases. */
function waitSummary(waits: EngineWait[], seconds: number, live: boolean, disks: number): Record<string, unknown> {
  const sum = (f: (w: EngineWait) => number): number => waits.reduce((a, w) => a + f(w), 0);
  const transferWaits = waits.filter((w) => w.engineMs === undefined);
  const engineMs = sum((w) => w.engineMs ?? 0);
  const pollLagMs = sum((w) => (w.engineMs !== undefined ? w.ms - w.engineMs : 0));
  const transferWaitMs = transferWaits.reduce((a, w) => a + w.ms, 0);
  const simModelledMs = SIM_STEP_MS * ((live ? 2 : 1) + 1) + SIM_TRANSFER_INIT_MS * disks;
  return {
    waits,
    backupPhasesEngineMs: engineMs,
    backupPhasesPollLagMs: pollLagMs,
    transferPhasesWaitMs: transferWaitMs,
    simModelledDelayMs: simModelledMs,
    /** what is left of the backup's time once the engine's phase times and transfer waits are
     *  taken out: our own work (reads, copy, index, commit) and our poll lag */
    oursMs: seconds * 1000 - engineMs - transferWaitMs,
  };
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
  const simDir = path.join(dir, 'sim');
  let sim: SimProcess | undefined;
  let engine: TimedEngineClient | undefined;
  const repos: Repository[] = [];
  try {
    // preparation in-process (hooks the CLI has not), then the engine in its own process
    const setup = await EngineSim.start({ dataDir: simDir, seed: false, tls });
    let vm: SimVm;
    try {
      setup.backup.setClusterVersion(clusterLevel);
      vm = await setup.addVm({ name: 'bench01', disks: [{ sizeBytes: diskBytes, format: 'cow' }], running: false });
    } finally {
      await setup.close();
    }
    const disk = vm.disks[0] as SimVm['disks'][number];
    await fillImage(disk.file, diskBytes, dataBytes, dir, 'random');
    const nbdcopy = await nbdcopyBaseline(disk.file, dir);

    sim = await startSimProcess(simDir, tls);
    const { info } = sim;
    engine = new TimedEngineClient({ baseUrl: info.baseUrl, ...(info.caFile ? { caFile: info.caFile } : {}), auth: { kind: 'password', user: info.users.admin.name, password: info.users.admin.password } });
    await engine.startVm(vm.id);
    await engine.waitForVmStatus(vm.id, ['up'], { timeoutMs: 120_000 });

    const tick = Number((await runTool('getconf', ['CLK_TCK'], { timeoutMs: 10_000 })).trim()) || 100;
    const simPid = sim.proc.pid as number;
    const run = async (method: 'engine' | 'qmp'): Promise<Record<string, unknown>> => {
      const client = engine as TimedEngineClient;
      const repo = await Repository.init(path.join(dir, `repo-${method}`));
      repos.push(repo);
      const backup = (): Promise<EngineVmBackupResult> =>
        engineVmBackup({ engine: client, vmId: vm.id, repository: repo, host: new LocalHost({ qmpDir: info.qmpDir }), scratchDir: dir, method });
      client.take();
      const full = await timedCpu(backup, simPid, tick);
      const fullWaits = client.take();
      const repoAfterFull = await du(repo.dir);
      const written = await rewriteOnePercent(info.qmpDir, vm.id, disk.id, diskBytes, dir);
      const inc = await timedCpu(backup, simPid, tick);
      const incWaits = client.take();
      const waits = (w: EngineWait[], seconds: number): Record<string, unknown> => (method === 'engine' ? { engineWaits: waitSummary(w, seconds, true, 1) } : {});
      return {
        full: { ...summary(full, dataBytes), repoBytes: repoAfterFull, cpu: full.cpu, ...waits(fullWaits, full.seconds) },
        incremental: { ...summary(inc, dataBytes), guestBytesWritten: written, repoGrowthBytes: (await du(repo.dir)) - repoAfterFull, cpu: inc.cpu, ...waits(incWaits, inc.seconds) },
        incrementalVsFullTime: inc.seconds / full.seconds,
      };
    };
    const viaEngine = await run('engine');
    const viaQmp = await run('qmp');
    const sec = (r: Record<string, unknown>, k: 'full' | 'incremental'): number => (r[k] as { seconds: number }).seconds;
    const incWaits = (viaEngine['incremental'] as { engineWaits: { backupPhasesEngineMs: number; transferPhasesWaitMs: number } }).engineWaits;
    const engineIncSeconds = sec(viaEngine, 'incremental');
    const engineFixedSeconds = (incWaits.backupPhasesEngineMs + incWaits.transferPhasesWaitMs) / 1000;
    const result = {
      machine: { cpus: os.cpus().length, node: process.version, load1: os.loadavg()[0] },
      disk: { virtualBytes: diskBytes, dataBytes },
      imageio: tls ? 'https' : 'http',
      engineMode: clusterLevel === '4.7' ? 'hybrid (cluster 4.7)' : 'StartVmBackup (cluster 4.6)',
      engineProcess: 'separate (test/engine-sim/main.js)',
      nbdcopy: { seconds: nbdcopy, MiBps: dataBytes / MiB / nbdcopy },
      engine: viaEngine,
      qmp: viaQmp,
      ratios: {
        // same data: the ratio of times is the ratio of throughputs
        engineFullVsNbdcopy: nbdcopy / sec(viaEngine, 'full'),
        qmpFullVsNbdcopy: nbdcopy / sec(viaQmp, 'full'),
        engineFullVsQmpFull: sec(viaQmp, 'full') / sec(viaEngine, 'full'),
        engineIncrementalVsFullTime: engineIncSeconds / sec(viaEngine, 'full'),
        // the incremental without the engine's phase times and transfer waits (what is ours)
        engineIncrementalOursVsFullTime: (engineIncSeconds - engineFixedSeconds) / sec(viaEngine, 'full'),
        qmpIncrementalVsFullTime: sec(viaQmp, 'incremental') / sec(viaQmp, 'full'),
        engineIncrementalVsQmpIncremental: sec(viaQmp, 'incremental') / engineIncSeconds,
      },
      targets: { engineIncrementalVsFullTime: '<= 0.10' },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const r of repos) await r.close().catch(() => undefined);
    await engine?.close().catch(() => undefined);
    if (sim) await stopSimProcess(sim.proc);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
