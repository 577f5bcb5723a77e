/**
 * A writer killed with SIGKILL at each step of a commit (FORMAT.md §9, §17.3): after a pack is
 * published, after the repository index file, after a disk's index, after the manifest. Each
 * time: no point appears, verify is clean, the next incremental on the same parent is exact,
 * and the garbage collection removes what the dead writer left without touching a live blob.
 */
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, type Manifest, type Repository } from '../../backend/src/repository';
import { CRASH_POINTS, type CrashPoint } from '../../backend/src/util/crashPoint';
import { readImage } from '../helpers/leasedRead';
import { initRepo, REPO_FORMATS, type RepoFormat } from '../helpers/repoFormats';

const KiB = 1024;
const CS = 256 * KiB;
const CHUNKS = 24;
const VM = { key: 'vm-crash', name: 'crash' };
const DISK = { node: 'n', format: 'qcow2', bitmap: 'b', bitmapPersistent: true } as const;

/** Writes an incremental point of `image` on `parent`, changing chunks `changed`. */
async function writeIncremental(repo: Repository, parent: Manifest, image: Buffer, changed: number[]): Promise<Manifest> {
  const base = await repo.readIndex(parent.pointId, 'vda');
  const w = await repo.beginPoint({ vm: VM, pointId: newPointId(), createdAt: new Date(), parentPointId: parent.pointId });
  const dw = w.beginDisk({ device: 'vda', virtualSize: image.length, base });
  await Promise.all(changed.map((i) => dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)))));
  await dw.finish();
  return w.commit({ disks: [{ device: 'vda', ...DISK, mode: 'incremental', reason: 'incremental', bytesRead: changed.length * CS }], consistency: 'crash', vmDefinition: null });
}

/** The same incremental in a child process stopped (and then killed) at `at`. */
async function killedWriterAt(format: RepoFormat, repoDir: string, parent: Manifest, imageFile: string, changed: number[], at: CrashPoint): Promise<boolean> {
  const modulePath = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');
  const script = `
    const { Repository, newPointId } = require(${JSON.stringify(modulePath)});
    const fs = require('fs');
    (async () => {
      const repo = await Repository.open(${JSON.stringify(repoDir)}, ${JSON.stringify(format.open)});
      const image = fs.readFileSync(${JSON.stringify(imageFile)});
      const base = await repo.readIndex(${JSON.stringify(parent.pointId)}, 'vda');
      const w = await repo.beginPoint({ vm: ${JSON.stringify(VM)}, pointId: newPointId(), createdAt: new Date(), parentPointId: ${JSON.stringify(parent.pointId)} });
      const dw = w.beginDisk({ device: 'vda', virtualSize: image.length, base });
      await Promise.all(${JSON.stringify(changed)}.map((i) => dw.putChunk(i, Buffer.from(image.subarray(i * ${CS}, (i + 1) * ${CS})))));
      await dw.finish();
      await w.commit({ disks: [{ device: 'vda', ...${JSON.stringify(DISK)}, mode: 'incremental', reason: 'incremental', bytesRead: 0 }], consistency: 'crash', vmDefinition: null });
      process.stderr.write('committed\\n');
    })().catch((e) => { process.stderr.write('failed ' + e.message + '\\n'); process.exit(3); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OLVM_BACKUP_TEST_STOP_AT: at } });
  let err = '';
  const stopped = await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer did not reach ${at} in 60 s: ${err}`)), 60_000);
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes(`stopped at ${at}`)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (err.includes('committed')) resolve(false);
      else reject(new Error(`writer exited before ${at}: ${err}`));
    });
  });
  if (stopped) {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  return stopped;
}

describe.each(REPO_FORMATS)('SIGKILL at each step of a commit (repository $name)', (format) => {
  let dir: string;
  let repo: Repository;
  let parent: Manifest;
  let image: Buffer;
  const points = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-pack-crash-'));
    repo = await initRepo(path.join(dir, 'repo'), format, { chunkSize: CS, workers: 2, ...(format.init.version === 2 ? { packSize: 1 << 20 } : {}) });
    image = randomBytes(CHUNKS * CS);
    image.fill(0, 6 * CS, 9 * CS);
    const w = await repo.beginPoint({ vm: VM, pointId: newPointId(), createdAt: new Date(), parentPointId: null });
    const dw = w.beginDisk({ device: 'vda', virtualSize: image.length });
    await Promise.all(Array.from({ length: CHUNKS }, (_, i) => dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)))));
    await dw.finish();
    parent = await w.commit({ disks: [{ device: 'vda', ...DISK, mode: 'full', reason: 'first-backup', bytesRead: image.length }], consistency: 'crash', vmDefinition: null });
    points.set(parent.pointId, Buffer.from(image));
  });

  afterAll(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const applicable = CRASH_POINTS.filter((p) => format.init.version === 2 || (p !== 'pack-published' && p !== 'index-written'));
  test.each(applicable)('killed at %s: no point, verify clean, the next incremental is exact, gc keeps every live blob', async (at) => {
    const changed = [1, 4, 10, 11, 12, 13, 20];
    const next = Buffer.from(image);
    for (const i of changed) randomBytes(CS).copy(next, i * CS);
    const file = path.join(dir, `image-${at}.bin`);
    await fs.writeFile(file, next);
    const before = (await repo.listPoints()).map((p) => p.pointId);

    expect(await killedWriterAt(format, repo.dir, parent, file, changed, at)).toBe(true);

    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual(before);
    expect((await repo.verify()).ok).toBe(true);
    // the dead writer's lock is stale (dead pid): the next writer takes over and cleans up
    const m = await writeIncremental(repo, parent, next, changed);
    points.set(m.pointId, next);
    expect(m.disks[0]?.mode).toBe('incremental');
    for (const [id, bytes] of points) expect((await readImage(repo, id, 'vda')).equals(bytes)).toBe(true);
    const gc = await repo.gc({ graceMs: 0 });
    expect(gc.dryRun).toBe(false);
    const report = await repo.verify();
    expect(report.problems).toEqual([]);
    for (const [id, bytes] of points) expect((await readImage(repo, id, 'vda')).equals(bytes)).toBe(true);
    await fs.rm(file);
  });
});
