/**
 * Benchmark: restore into the engine against a local baseline measured in the same run.
 *
 *   npm run bench:restore [-- --disk-gib 2 --data-gib 1 --in-flight 4 --runs 3]
 *
 * A restore point of a DISK GiB disk holding DATA GiB of incompressible data (64 MiB runs spread
 * over the disk) is written with the repository API. Measured:
 *  - baseline: `qemu-img convert` of the same data (the point restored to a local raw file) to a
 *    local file, raw and qcow2: as run by default (the target cache is `unsafe`: nothing is
 *    flushed, the data may still be in the page cache when it exits) and with `-t writeback`
 *    (flushed at close: durable, as our restore is after its final flush);
 *  - ours: executeRestore of the point into a new floating disk (raw, then cow) of the engine
 *    simulator, running as its own process (its imageio endpoint speaks HTTPS); the upload time
 *    runs from the transfer's creation to the end of its finalize; verification is reported apart;
 *  - the endpoint's ceiling: the same requests from a bare client holding the data in memory.
 * Each measurement is the best of RUNS (the machine is shared). Prints one JSON object; the
 * target is an upload at least half as fast as the durable baseline to the same format, with
 * zero extents sent as zero requests (counts reported). Nothing is asserted.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { EngineClient } from '../../backend/src/engine';
import { newPointId, Repository, type Manifest } from '../../backend/src/repository';
import { executeRestore, openPoint, restoreToFile, type RestorePhase, type RestoreResult } from '../../backend/src/restore';
import type { RestorePlan } from '../../backend/src/restore/plan/types';
import { runTool } from '../../backend/src/util/exec';
import { arg, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;
const DEVICE = 'virtio-disk0';

/** A point written straight through the repository API: data in 64 MiB runs, the rest zero. */
async function makePoint(repo: Repository, diskBytes: number, dataBytes: number): Promise<Manifest> {
  const w = await repo.beginPoint({ vm: { key: 'bench', name: 'bench' }, pointId: newPointId(new Date()), createdAt: new Date(), parentPointId: null });
  const d = w.beginDisk({ device: DEVICE, virtualSize: diskBytes });
  const run = 64 * MiB;
  const runs = Math.floor(dataBytes / run);
  const stride = Math.floor(diskBytes / runs / MiB) * MiB;
  const chunk = repo.chunkSize;
  const isData = (off: number): boolean => off % stride < run && Math.floor(off / stride) < runs;
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i * chunk < diskBytes; i++) {
    if (!isData(i * chunk)) {
      d.putZero(i);
      continue;
    }
    pending.push(d.putChunk(i, randomBytes(Math.min(chunk, diskBytes - i * chunk))));
    if (pending.length >= 16) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await d.finish();
  return w.commit({
    disks: [{ device: DEVICE, node: 'bench', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'bench', bitmapPersistent: false, bytesRead: dataBytes, meta: {} }],
    consistency: 'crash',
    vmDefinition: null,
  });
}

/**
 * The endpoint's own ceiling: the same layout sent by a bare client (no repository, no hashing,
 * one reused 8 MiB buffer of random bytes), with the same requests in flight, through the same
 * transfer steps. What is left between this and the executor is our side's cost.
 */
async function bareUpload(engine: EngineClient, sd: { id: string }, format: 'raw' | 'cow', diskBytes: number, dataBytes: number, inFlight: number): Promise<number> {
  const diskId = randomUUID();
  await engine.addDisk({ id: diskId, name: `bench-bare-${format}`, provisionedSize: diskBytes, format, sparse: true, backup: format === 'cow' ? 'incremental' : 'none', storageDomainId: sd.id });
  await engine.waitForDiskStatus(diskId, ['ok'], { timeoutMs: 60_000 });
  const run = 64 * MiB;
  const runs = Math.floor(dataBytes / run);
  const stride = Math.floor(diskBytes / runs / MiB) * MiB;
  const requests: Array<{ kind: 'data' | 'zero'; offset: number; length: number }> = [];
  for (let r = 0; r < runs; r++) {
    for (let o = 0; o < run; o += 8 * MiB) requests.push({ kind: 'data', offset: r * stride + o, length: 8 * MiB });
    const zeroEnd = r === runs - 1 ? diskBytes : (r + 1) * stride;
    requests.push({ kind: 'zero', offset: r * stride + run, length: zeroEnd - r * stride - run });
  }
  const buf = randomBytes(8 * MiB);
  const t0 = process.hrtime.bigint();
  const t = await engine.createImageTransfer({ diskId, direction: 'upload', format: 'raw' });
  const ready = await engine.waitForTransferPhase(t.id, ['transferring'], { timeoutMs: 60_000 });
  const io = engine.imageio(ready?.transferUrl ?? '', { maxConnections: inFlight });
  await io.options();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let q = requests[next++]; q; q = requests[next++]) {
        if (q.kind === 'data') await io.put(q.offset, buf);
        else await io.zero(q.offset, q.length);
      }
    }),
  );
  await io.flush();
  io.close();
  await engine.finalizeImageTransfer(t.id);
  await engine.waitForTransferPhase(t.id, ['finished_success', 'finished_failure'], { timeoutMs: 60_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await engine.removeDisk(diskId);
  return seconds;
}

interface Sim {
  proc: ChildProcess;
  baseUrl: string;
  caFile: string;
  user: string;
  password: string;
}

/** The simulator in a process of its own, so its imageio does not share our event loop. */
async function startSim(dataDir: string): Promise<Sim> {
  const proc = spawn(process.execPath, [path.resolve(__dirname, '../engine-sim/main.js'), dataDir, '--tls', '--no-seed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    proc.once('exit', (code) => reject(new Error(`engine simulator exited with ${code}`)));
  });
  const info = JSON.parse(line) as { baseUrl: string; caFile: string; users: { admin: { name: string; password: string } } };
  return { proc, baseUrl: info.baseUrl, caFile: info.caFile, user: info.users.admin.name, password: info.users.admin.password };
}

async function stopSim(sim: Sim): Promise<void> {
  if (sim.proc.exitCode !== null) return;
  const gone = new Promise((r) => sim.proc.once('exit', r));
  sim.proc.kill('SIGTERM');
  await gone;
}

function plan(m: Manifest, format: 'raw' | 'cow', sd: { id: string; name: string }): RestorePlan {
  const d = m.disks[0];
  if (!d) throw new Error('the point has no disk');
  return {
    pointId: m.pointId,
    sourceVm: { id: 'bench', name: 'bench' },
    mode: 'disks',
    vm: null,
    attachToVmId: null,
    useProxy: false,
    disks: [
      {
        device: d.device,
        diskId: randomUUID(),
        imageId: null,
        name: `bench-restore-${format}`,
        description: '',
        storageDomainId: sd.id,
        storageDomainName: sd.name,
        format,
        sparse: true,
        backup: format === 'cow' ? 'incremental' : 'none',
        provisionedSize: d.virtualSize,
        initialSize: null,
        dataBytes: 0,
        interface: 'virtio_scsi',
        bootable: false,
      },
    ],
    problems: [],
    ok: true,
  };
}

/** One restore through the executor, with the time of each phase from its progress events. */
async function restoreOnce(engine: EngineClient, repo: Repository, p: RestorePlan, inFlight: number): Promise<{ result: RestoreResult; phases: Partial<Record<RestorePhase, number>>; wall: number }> {
  const phases: Partial<Record<RestorePhase, number>> = {};
  let last: RestorePhase | undefined;
  const t0 = Date.now();
  const point = await openPoint(repo, p.pointId, 'restore', 'restore bench');
  const result = await executeRestore(p, {
    engine,
    point,
    maxInFlight: inFlight,
    onProgress: (e) => {
      if (e.phase !== last) phases[(last = e.phase)] = Date.now();
    },
  }).finally(() => point.release());
  return { result, phases, wall: (Date.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 2) * GiB;
  const dataBytes = arg('data-gib', 1) * GiB;
  const inFlight = arg('in-flight', 4);
  const runs = arg('runs', 3);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-restore-bench-'));
  let repo: Repository | undefined;
  let sim: Sim | undefined;
  let engine: EngineClient | undefined;
  try {
    repo = await Repository.init(path.join(dir, 'repo'));
    const point = await makePoint(repo, diskBytes, dataBytes);

    // baseline: the same data as a local raw file, converted by qemu-img to a local file
    const source = path.join(dir, 'point.raw');
    await restoreToFile({ repository: repo, pointId: point.pointId, device: DEVICE, out: source, format: 'raw' });
    const baseline: Record<string, Record<'default' | 'durable', { seconds: number; mibPerSec: number }>> = {};
    for (const [fmt, qfmt] of [['raw', 'raw'], ['cow', 'qcow2']] as const) {
      const out = path.join(dir, `convert.${qfmt}`);
      const convert = async (extra: string[]): Promise<{ seconds: number; mibPerSec: number }> => {
        const seconds = await best(runs, async () => {
          await fs.rm(out, { force: true });
          return (await timed(() => runTool('qemu-img', ['convert', ...extra, '-f', 'raw', '-O', qfmt, source, out], { timeoutMs: 600_000 }))).seconds;
        });
        return { seconds: round(seconds), mibPerSec: round(diskBytes / MiB / seconds) };
      };
      baseline[fmt] = { default: await convert([]), durable: await convert(['-t', 'writeback']) };
      await fs.rm(out, { force: true });
    }
    await fs.rm(source, { force: true });

    sim = await startSim(path.join(dir, 'sim'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.user, password: sim.password } });
    const sd = (await engine.listStorageDomains())[0];
    if (!sd) throw new Error('the simulator has no storage domain');

    const ours: Record<string, unknown> = {};
    const ceiling: Record<string, { seconds: number; mibPerSec: number; ratioToDurableQemuImg: number }> = {};
    for (const fmt of ['raw', 'cow'] as const) {
      const seconds = await best(runs, async () => (await timed(() => bareUpload(engine as EngineClient, sd, fmt, diskBytes, dataBytes, inFlight))).value);
      const mibPerSec = diskBytes / MiB / seconds;
      ceiling[fmt] = { seconds: round(seconds), mibPerSec: round(mibPerSec), ratioToDurableQemuImg: round(mibPerSec / (baseline[fmt] as Record<'durable', { mibPerSec: number }>).durable.mibPerSec) };
    }
    for (const fmt of ['raw', 'cow'] as const) {
      let fastest: { upload: number; finalize: number; verify: number; total: number; result: RestoreResult } | undefined;
      for (let r = 0; r < runs; r++) {
        const p = plan(point, fmt, sd);
        const { result, phases, wall } = (await timed(() => restoreOnce(engine as EngineClient, repo as Repository, p, inFlight))).value;
        // from the upload transfer's creation to the end of its finalize
        const upload = ((phases.verifying ?? phases.done ?? Date.now()) - (phases.uploading ?? 0)) / 1000;
        const verify = ((phases.done ?? 0) - (phases.verifying ?? 0)) / 1000;
        const finalize = ((phases.verifying ?? phases.done ?? 0) - (phases.finalizing ?? 0)) / 1000;
        if (!fastest || upload < fastest.upload) fastest = { upload, finalize, verify, total: wall, result };
        await engine.removeDisk(p.disks[0]?.diskId ?? '');
      }
      if (!fastest) throw new Error('no run');
      const up = fastest.result.uploads[0];
      const base = baseline[fmt] as Record<'default' | 'durable', { mibPerSec: number }>;
      const mibPerSec = diskBytes / MiB / fastest.upload;
      ours[fmt] = {
        uploadSeconds: round(fastest.upload),
        ofWhichFinalizeSeconds: round(fastest.finalize),
        mibPerSec: round(mibPerSec),
        ratioToDurableQemuImg: round(mibPerSec / base.durable.mibPerSec),
        ratioToDefaultQemuImg: round(mibPerSec / base.default.mibPerSec),
        verifySeconds: round(fastest.verify),
        totalSeconds: round(fastest.total),
        verified: fastest.result.disks[0]?.verified ?? false,
        dataBytesSent: up?.dataBytes,
        dataRequests: up?.dataRequests,
        zeroBytes: up?.zeroBytes,
        zeroRequests: up?.zeroRequests,
      };
    }
    process.stdout.write(
      `${JSON.stringify(
        {
          disk: { sizeGiB: diskBytes / GiB, dataGiB: dataBytes / GiB, chunkSize: repo.chunkSize, layout: '64 MiB runs of random data, evenly spread' },
          inFlight,
          runs,
          baselineQemuImgConvert: baseline,
          endpointCeilingBareClient: ceiling,
          restoreIntoEngineSimulator: ours,
          target: 'upload at least 0.5 of durable qemu-img convert to the same format; zero extents as zero requests',
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await engine?.close().catch(() => undefined);
    if (sim) await stopSim(sim);
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The shortest of `n` timings. */
async function best(n: number, fn: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < n; i++) min = Math.min(min, await fn());
  return min;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
