/**
 * Benchmark: storage of daily incrementals, and prune + GC at scale.
 *
 *   npm run bench:retention [-- --disk-gib 2 --days 7 --change-pct 1 --chunk-mib 1 --points 1000]
 *
 * Part 1: a DISK GiB image of random data backed up once a day for DAYS days through the
 * repository API, as the backup does it (day 1 a full; every later day an incremental: the
 * previous index with the changed chunks stored). Between days CHANGE % of the disk is rewritten
 * with random data as 64 KiB writes at random 64 KiB-aligned offsets. After each day: the
 * repository's size (`du`) against the sum of that many full copies (plain raw copies and
 * `qemu-img convert -O qcow2` copies, measured once) and against the bytes the guest changed.
 *
 * Part 2: POINTS small points (10 VMs, one point a day each, a 1 MiB disk with one new chunk per
 * point, a few retention-locked), then a prune dry run, the prune, and GC, timed.
 *
 * Prints one JSON object. Nothing is asserted.
 */
import { randomBytes, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, Repository, type DiskIndex, type Manifest, type VmIdentity } from '../../backend/src/repository';
import { runTool } from '../../backend/src/util/exec';
import { ageChunks } from '../integration/retentionFixture';
import { arg, du, timed } from './common';

const KiB = 1024;
const MiB = 1 << 20;
const GiB = 1 << 30;
const WRITE = 64 * KiB;

async function fillRandom(file: string, size: number): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0; off < size; off += 8 * MiB) await fh.write(randomBytes(Math.min(8 * MiB, size - off)), 0, Math.min(8 * MiB, size - off), off);
  } finally {
    await fh.close();
  }
}

/** Rewrites `bytes` of the image as 64 KiB random writes at distinct random aligned offsets;
 *  returns the chunks touched. */
async function churn(file: string, size: number, bytes: number, chunkSize: number): Promise<Set<number>> {
  const slots = size / WRITE;
  const picked = new Set<number>();
  while (picked.size < Math.ceil(bytes / WRITE)) picked.add(randomInt(slots));
  const fh = await fs.open(file, 'r+');
  const chunks = new Set<number>();
  try {
    for (const s of picked) {
      await fh.write(randomBytes(WRITE), 0, WRITE, s * WRITE);
      chunks.add(Math.floor((s * WRITE) / chunkSize));
    }
  } finally {
    await fh.close();
  }
  return chunks;
}

/** One point of the image: all chunks (full) or `dirty` ones on `base`, 8 puts in flight. */
async function backupImage(repo: Repository, vm: VmIdentity, file: string, size: number, parent: Manifest | undefined, dirty: Set<number> | undefined): Promise<Manifest> {
  const at = new Date();
  const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: parent?.pointId ?? null });
  const base: DiskIndex | undefined = parent ? await repo.readIndex(parent.pointId, 'vda') : undefined;
  const dw = w.beginDisk({ device: 'vda', virtualSize: size, ...(base ? { base } : {}) });
  const todo = dirty ? [...dirty].sort((a, b) => a - b) : Array.from({ length: dw.count }, (_, i) => i);
  const fh = await fs.open(file, 'r');
  try {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < todo.length) {
        const i = todo[next++] as number;
        const len = dw.chunkLength(i);
        const buf = Buffer.allocUnsafe(len);
        await fh.read(buf, 0, len, i * repo.chunkSize);
        await dw.putChunk(i, buf);
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
  } finally {
    await fh.close();
  }
  await dw.finish();
  return w.commit({
    disks: [
      {
        device: 'vda',
        node: 'bench',
        format: 'raw',
        mode: base ? 'incremental' : 'full',
        reason: base ? 'incremental' : 'first-backup',
        bitmap: 'bench',
        bitmapPersistent: false,
        bytesRead: todo.length * repo.chunkSize,
      },
    ],
    consistency: 'crash',
    vmDefinition: null,
  });
}

async function dailyStorage(tmp: string): Promise<Record<string, unknown>> {
  const size = arg('disk-gib', 2) * GiB;
  const days = arg('days', 7);
  const changePct = arg('change-pct', 1);
  const chunkSize = arg('chunk-mib', 1) * MiB;
  const image = path.join(tmp, 'disk.raw');
  await fillRandom(image, size);
  const repo = await Repository.init(path.join(tmp, 'repo'), { chunkSize });
  const vm = { key: 'bench-vm', name: 'bench' };
  const plainCopy = await du(image);
  const qcowFile = path.join(tmp, 'copy.qcow2');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', image, qcowFile], { timeoutMs: 600_000 });
  const qcowCopy = await du(qcowFile);
  await fs.rm(qcowFile);

  const perDay: Array<Record<string, unknown>> = [];
  let parent: Manifest | undefined;
  let changedTotal = 0;
  let firstDayBytes = 0;
  try {
    for (let day = 1; day <= days; day++) {
      let dirty: Set<number> | undefined;
      let changed = 0;
      if (day > 1) {
        changed = Math.ceil((size * changePct) / 100 / WRITE) * WRITE;
        dirty = await churn(image, size, changed, chunkSize);
        changedTotal += changed;
      }
      const t = await timed(() => backupImage(repo, vm, image, size, parent, dirty));
      parent = t.value;
      const d = parent.disks[0]!;
      const repoBytes = await du(repo.dir);
      if (day === 1) firstDayBytes = repoBytes;
      perDay.push({
        day,
        mode: d.mode,
        seconds: +t.seconds.toFixed(2),
        bytesChangedThatDay: changed,
        chunksChangedThatDay: dirty?.size ?? d.index.chunkCount,
        chunksNew: d.chunksNew,
        bytesStoredThatDay: d.bytesStored,
        repoBytes,
        sumOfPlainCopies: plainCopy * day,
        sumOfQcow2Copies: qcowCopy * day,
        repoVsPlainCopies: +(repoBytes / (plainCopy * day)).toFixed(4),
        growthOverFirstDay: repoBytes - firstDayBytes,
        bytesChangedSoFar: changedTotal,
        growthPerChangedByte: changedTotal ? +((repoBytes - firstDayBytes) / changedTotal).toFixed(2) : null,
      });
    }
  } finally {
    await repo.close();
  }
  const last = perDay[perDay.length - 1]!;
  return {
    diskBytes: size,
    days,
    changePct,
    writeSize: WRITE,
    chunkSize,
    baseline: { plainCopyBytes: plainCopy, qcow2CopyBytes: qcowCopy },
    perDay,
    summary: {
      repoBytes: last['repoBytes'],
      sumOfPlainCopies: last['sumOfPlainCopies'],
      savedVsPlainCopies: +(1 - (last['repoBytes'] as number) / (last['sumOfPlainCopies'] as number)).toFixed(4),
      incrementalGrowth: last['growthOverFirstDay'],
      bytesChanged: changedTotal,
      note: 'scattered 64 KiB writes dirty whole chunks: each changed chunk is stored again, so growth ≈ changed chunks × chunk size (compare --chunk-mib 0.25)',
    },
  };
}

async function pruneAtScale(tmp: string): Promise<Record<string, unknown>> {
  const total = arg('points', 1000);
  const vms = 10;
  const perVm = Math.ceil(total / vms);
  const cs = 256 * KiB;
  const repo = await Repository.init(path.join(tmp, 'repo-many'), { chunkSize: cs });
  const day0 = Date.parse('2024-01-01T02:00:00Z');
  let written = 0;
  const write = await timed(async () => {
    for (let v = 0; v < vms; v++) {
      const vm = { key: `vm-${v}`, name: `vm ${v}` };
      let parent: Manifest | undefined;
      for (let d = 0; d < perVm && written < total; d++, written++) {
        const at = new Date(day0 + d * 86_400_000 + v * 60_000);
        const w = await repo.beginPoint({ vm, pointId: newPointId(at), createdAt: at, parentPointId: parent?.pointId ?? null });
        const base = parent ? await repo.readIndex(parent.pointId, 'vda') : undefined;
        const dw = w.beginDisk({ device: 'vda', virtualSize: 4 * cs, ...(base ? { base } : {}) });
        const dirty = base ? [d % 4] : [0, 1, 2, 3];
        for (const i of dirty) await dw.putChunk(i, randomBytes(cs));
        await dw.finish();
        parent = await w.commit({
          disks: [{ device: 'vda', node: 'n', format: 'raw', mode: base ? 'incremental' : 'full', reason: base ? 'incremental' : 'first-backup', bitmap: 'b', bitmapPersistent: false, bytesRead: dirty.length * cs }],
          consistency: 'crash',
          vmDefinition: null,
          // every 25th point is under a retention lock
          lockedUntil: d % 25 === 10 ? '2099-01-01T00:00:00.000Z' : null,
        });
      }
    }
  });
  // written well before the collection: the grace period does not hold anything back
  await ageChunks(repo.dir, 2 * 3600_000);
  const rules = { keepLast: 3, daily: 7, weekly: 4, monthly: 3 };
  try {
    const dry = await timed(() => repo.prune(rules, { tz: 'Europe/Paris', dryRun: true }));
    const prune = await timed(() => repo.prune(rules, { tz: 'Europe/Paris', actor: 'bench' }));
    const repoBefore = await du(repo.dir);
    const gc = await timed(() => repo.gc({ graceMs: 0, actor: 'bench' }));
    const repoAfter = await du(repo.dir);
    return {
      points: written,
      vms,
      rules,
      timeZone: 'Europe/Paris',
      writeSeconds: +write.seconds.toFixed(2),
      pruneDryRunSeconds: +dry.seconds.toFixed(3),
      pruneSeconds: +prune.seconds.toFixed(3),
      removed: prune.value.removed.length,
      kept: prune.value.kept,
      lockedSkipped: prune.value.locked.length,
      gcSeconds: +gc.seconds.toFixed(3),
      gcChunksScanned: gc.value.chunksScanned,
      gcChunksRemoved: gc.value.chunksRemoved,
      gcBytesRemoved: gc.value.bytesRemoved,
      repoBytesBeforeGc: repoBefore,
      repoBytesAfterGc: repoAfter,
      auditRecords: (await repo.auditLog()).length,
    };
  } finally {
    await repo.close();
  }
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-retention-bench-'));
  try {
    const storage = await dailyStorage(tmp);
    const scale = await pruneAtScale(tmp);
    process.stdout.write(JSON.stringify({ bench: 'retention', cpus: os.cpus().length, storage, pruneAndGc: scale }, null, 2) + '\n');
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`retention bench failed: ${String((err as Error)?.stack ?? err)}\n`);
  process.exitCode = 1;
});
