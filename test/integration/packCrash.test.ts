/**
 * A writer killed with SIGKILL at each step of a commit (FORMAT.md §9, §17.3): after a pack is
 * published, after the repository index file, after a disk's index, after the manifest. Each
 * time: no point appears, verify is clean, the next incremental on the same parent is exact,
 * and the garbage collection removes what the dead writer left without touching a live blob.
 * Remote repositories (FORMAT.md §24) also at each step of the upload: after a pack, after the
 * index file, after the point's disk indexes, after the manifest (the point is then committed:
 * the next open's sync brings it into the cache); a reader with a fresh cache never sees half
 * a point.
 */
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, type Manifest, type Repository } from '../../backend/src/repository';
import { CRASH_POINTS, REMOTE_CRASH_POINTS, type CrashPoint } from '../../backend/src/util/crashPoint';
import { readImage } from '../helpers/leasedRead';
import { LOCAL, remoteBackends, type RepoBackend } from '../helpers/repoBackends';
import { REPO_FORMATS, V2, V2_ENCRYPTED, type RepoFormat } from '../helpers/repoFormats';

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
async function killedWriterAt(backend: RepoBackend, format: RepoFormat, repoDir: string, parent: Manifest, imageFile: string, changed: number[], at: CrashPoint): Promise<boolean> {
  const modulePath = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');
  const script = `
    const { newPointId } = require(${JSON.stringify(modulePath)});
    const fs = require('fs');
    ${backend.childOpenScript(repoDir, modulePath)}
    (async () => {
      const repo = await openRepo(${JSON.stringify(format.open)});
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

/** Every format on a local repository; format 2 (plain and encrypted) on each remote backend. */
const CASES: Array<{ name: string; backend: RepoBackend; format: RepoFormat }> = [
  ...REPO_FORMATS.map((format) => ({ name: format.name, backend: LOCAL, format })),
  ...remoteBackends().flatMap((backend) => [V2, V2_ENCRYPTED].map((format) => ({ name: `${format.name} on ${backend.name}`, backend, format }))),
];

describe.each(CASES)('SIGKILL at each step of a commit (repository $name)', ({ backend, format }) => {
  const remote = backend.name !== 'local';
  let dir: string;
  let repo: Repository;
  let parent: Manifest;
  let image: Buffer;
  const points = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-pack-crash-'));
    repo = await backend.init(path.join(dir, 'repo'), { ...format.init, chunkSize: CS, workers: 2, ...(format.init.version === 2 ? { packSize: 1 << 20 } : {}) });
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

  const applicable: CrashPoint[] = [...CRASH_POINTS.filter((p) => format.init.version === 2 || (p !== 'pack-published' && p !== 'index-written')), ...(remote ? REMOTE_CRASH_POINTS : [])];
  test.each(applicable)('killed at %s: no point, verify clean, the next incremental is exact, gc keeps every live blob', async (at) => {
    const changed = [1, 4, 10, 11, 12, 13, 20];
    const next = Buffer.from(image);
    for (const i of changed) randomBytes(CS).copy(next, i * CS);
    const file = path.join(dir, `image-${at}.bin`);
    await fs.writeFile(file, next);
    const before = (await repo.listPoints()).map((p) => p.pointId);
    const repoDir = repo.dir;
    // a remote repository has one writer (the lease): this one steps aside for the child
    if (remote) await repo.close();

    expect(await killedWriterAt(backend, format, repoDir, parent, file, changed, at)).toBe(true);

    if (remote) {
      // a reader with a fresh cache sees no half point: nothing, or (killed after the store's
      // manifest, the point's commit) the whole point, byte-exact
      const reader = await backend.open(repoDir, { ...format.open, mode: 'reader', cacheDir: path.join(dir, `reader-${at}`) });
      try {
        const seen = (await reader.listPoints()).map((p) => p.pointId);
        if (at === 'manifest-uploaded') {
          expect(seen.length).toBe(before.length + 1);
          expect((await readImage(reader, seen[seen.length - 1] as string, 'vda')).equals(next)).toBe(true);
        } else expect(seen).toEqual(before);
        expect((await reader.verify({ repair: false })).problems).toEqual([]);
      } finally {
        await reader.close();
      }
      // the next writer (the dead one's lease is taken over: its pid is gone) syncs its cache
      repo = await backend.open(repoDir, { ...format.open, workers: 2 });
      if (at === 'manifest-uploaded') {
        const all = (await repo.listPoints()).map((p) => p.pointId);
        const committed = all.find((id) => !before.includes(id)) as string;
        points.set(committed, next);
        before.push(committed);
      }
    }
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
