import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, Repository, type Manifest, type VmIdentity } from '../../backend/src/repository';
import { ageChunks, chunkFiles, CS, expectCode, mutate, readImage, scratchRepositories, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
const vmG: VmIdentity = { key: 'vm-g', name: 'garbage' };

describe('garbage collection', () => {
  const newRepo = scratchRepositories('olvm-gc-');

  /** A point of vm-g, deleted at once: its 8 chunks are garbage. Returns its image. */
  async function garbage(repo: Repository): Promise<Buffer> {
    const image = randomBytes(8 * CS);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image }]);
    await repo.deletePoint(g.pointId, { reason: 'make garbage', actor: 'test' });
    return image;
  }

  test('removes unreferenced chunks older than the grace period and nothing else; dry run only counts', async () => {
    const repo = await newRepo();
    const keep = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(4 * CS) }]);
    await garbage(repo);
    // fresh garbage is within the grace period
    const young = await repo.gc({ graceMs: HOUR });
    expect(young).toMatchObject({ chunksScanned: 12, chunksReferenced: 4, chunksRemoved: 0, chunksKeptYoung: 8, pointsMarked: 1 });
    await ageChunks(repo.dir, 2 * HOUR);
    const dry = await repo.gc({ graceMs: HOUR, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, chunksRemoved: 8, chunksKeptYoung: 0 });
    expect(dry.bytesRemoved).toBeGreaterThanOrEqual(8 * CS);
    expect(await chunkFiles(repo.dir)).toHaveLength(12);
    const real = await repo.gc({ graceMs: HOUR, actor: 'nightly' });
    expect(real).toMatchObject({ dryRun: false, chunksRemoved: 8, bytesRemoved: dry.bytesRemoved, chunksPutBack: 0 });
    expect(await chunkFiles(repo.dir)).toHaveLength(4);
    expect(await fs.readdir(path.join(repo.dir, 'gc-pending'))).toEqual([]);
    await readImage(repo, keep.pointId, 'vda');
    const gcRecords = (await repo.auditLog()).filter((r) => r.action === 'gc');
    expect(gcRecords).toHaveLength(2); // the two real runs, not the dry one
    expect(gcRecords[1]).toMatchObject({ actor: 'nightly', details: { chunksRemoved: 8 } });
  });

  test('a live VM lock of another host protects chunks written since it started', async () => {
    const repo = await newRepo();
    await garbage(repo);
    await ageChunks(repo.dir, HOUR);
    const lockFile = path.join(repo.dir, 'locks', 'vm-far.lock');
    const startedAt = new Date(Date.now() - 2 * HOUR).toISOString();
    await fs.writeFile(lockFile, JSON.stringify({ vmKey: 'far', pid: 1, hostname: 'other.example', bootId: null, startedAt, pointId: null, nonce: 'ff' }));
    const held = await repo.gc({ graceMs: 0 });
    expect(held).toMatchObject({ liveWriters: 1, chunksRemoved: 0, chunksKeptYoung: 8 });
    expect(Date.parse(held.cutoff)).toBeLessThanOrEqual(Date.parse(startedAt));
    await fs.rm(lockFile);
    expect((await repo.gc({ graceMs: 0 })).chunksRemoved).toBe(8);
  });

  test('one collection at a time; a crashed one is finished by the next; an unreadable index stops it', async () => {
    const repo = await newRepo();
    const m = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]);
    // another collection holds the lock
    const lock = path.join(repo.dir, 'locks', 'gc.lock');
    await fs.writeFile(lock, JSON.stringify({ vmKey: 'gc', pid: process.pid, hostname: os.hostname(), bootId: null, startedAt: new Date().toISOString(), pointId: null, nonce: 'other' }));
    const busy = await expectCode(repo.gc(), 'REPO_LOCKED');
    expect(busy.message).toMatch(/gc lock is locked by pid/);
    await fs.rm(lock);
    // a collection died after moving a referenced-looking chunk aside: the next one puts it back first
    const [chunk] = await chunkFiles(repo.dir);
    await fs.mkdir(path.join(repo.dir, 'gc-pending'), { recursive: true });
    await fs.rename(chunk!, path.join(repo.dir, 'gc-pending', path.basename(chunk!)));
    await expectCode(readImage(repo, m.pointId, 'vda'), 'REPO_CORRUPT');
    const r = await repo.gc({ graceMs: 0 });
    expect(r.leftoversRestored).toBe(1);
    await readImage(repo, m.pointId, 'vda');
    // a damaged manifest does not free the point's chunks (they are marked from its index files)
    const mf = path.join(repo.dir, 'points', m.pointId, 'manifest.json');
    await fs.writeFile(mf, '{"broken":');
    await ageChunks(repo.dir, HOUR);
    expect((await repo.gc({ graceMs: 0 })).chunksRemoved).toBe(0);
    // an index that cannot be parsed stops the collection
    await fs.writeFile(path.join(repo.dir, 'points', m.pointId, m.disks[0]!.index.file), 'garbage');
    const refused = await expectCode(repo.gc({ graceMs: 0 }), 'REPO_CORRUPT');
    expect(refused.message).toContain(m.pointId);
    expect(await chunkFiles(repo.dir)).toHaveLength(2);
  });

  /**
   * The backup's three ways to refer to a chunk, against a collection with no grace period that
   * runs again and again while it writes: chunks it finds already stored (here: garbage of a
   * deleted VM, written long ago and referenced by nothing), chunks carried over from its parent
   * point (deleted while the backup runs), and chunks it stores new. The collections start once
   * the backup has reused the garbage chunks and run until after its commit.
   */
  async function backupUnderGc(repo: Repository, runWriter: (parent: Manifest, expected: Buffer, hooks: WriterHooks) => Promise<string>): Promise<void> {
    const image = randomBytes(8 * CS);
    const parent = await writePoint(repo, vmB, [{ device: 'vda', image }]);
    const g = await garbage(repo);
    await ageChunks(repo.dir, 2 * HOUR);
    // the new image: chunks 1 and 3 now hold what vm-g's chunks 0 and 1 held; chunks 5 and 6
    // new data; the other four carried over from the parent
    const expected = mutate(image, [5, 6]);
    g.copy(expected, 1 * CS, 0, CS);
    g.copy(expected, 3 * CS, CS, 2 * CS);

    let stop = false;
    const runs: Array<Awaited<ReturnType<Repository['gc']>>> = [];
    let gcLoop: Promise<void> | undefined;
    let pointId: string;
    try {
      pointId = await runWriter(parent, expected, {
        afterBaseRead: async () => {
          // the parent goes while the backup runs (as a prune could do it)
          const del = await repo.deletePoint(parent.pointId, { reason: 'pruned mid-backup', actor: 'test' });
          expect(del.deferred).toBe(true);
        },
        afterReuse: () => {
          gcLoop = (async () => {
            while (!stop) runs.push(await repo.gc({ graceMs: 0 }));
          })();
        },
      });
    } finally {
      stop = true;
      await gcLoop;
    }
    const during = runs.length;
    for (let i = 0; i < 3; i++) runs.push(await repo.gc({ graceMs: 0 }));

    expect(during).toBeGreaterThan(5);
    // the collections did remove garbage meanwhile: the six chunks of vm-g nobody reused (and,
    // once the writer was done, the parent's four replaced chunks)
    expect(runs.slice(0, during).reduce((n, r) => n + r.chunksRemoved, 0)).toBeGreaterThanOrEqual(6);
    expect(runs.some((r) => r.trashKept.includes(parent.pointId))).toBe(true);
    expect(runs.some((r) => r.trashPurged.includes(parent.pointId))).toBe(true);
    const m = await repo.readManifest(pointId);
    // the two garbage chunks were reused, not stored again
    expect(m.disks[0]).toMatchObject({ chunksNew: 2, chunksReused: 6, chunksZero: 0 });
    expect((await readImage(repo, pointId, 'vda')).equals(expected)).toBe(true);
    expect((await repo.verify({ repair: false })).ok).toBe(true);
    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([pointId]);
    // and what is left is exactly what the new point references
    expect(await chunkFiles(repo.dir)).toHaveLength(8);
  }

  test('gc running again and again while a backup of this process writes: the new point restores exactly', async () => {
    const repo = await newRepo();
    await backupUnderGc(repo, async (parent, expected, hooks) => (await writePointSlowly(repo, parent, expected, hooks)).pointId);
  });

  test('gc running again and again while a backup in another process writes: the new point restores exactly', async () => {
    const repo = await newRepo();
    await backupUnderGc(repo, async (parent, expected, hooks) => {
      const expectedFile = path.join(path.dirname(repo.dir), `expected-${Date.now()}.raw`);
      await fs.writeFile(expectedFile, expected);
      const modulePath = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');
      const script = `
        const { Repository, newPointId } = require(${JSON.stringify(modulePath)});
        const fs = require('fs');
        const CS = ${CS};
        const line = () => new Promise((resolve) => process.stdin.once('data', resolve));
        (async () => {
          const repo = await Repository.open(${JSON.stringify(repo.dir)}, { workers: 1 });
          const at = new Date();
          const w = await repo.beginPoint({ vm: ${JSON.stringify(vmB)}, pointId: newPointId(at), createdAt: at, parentPointId: ${JSON.stringify(parent.pointId)} });
          const base = await repo.readIndex(${JSON.stringify(parent.pointId)}, 'vda');
          process.stdout.write('base\\n');
          await line();
          const image = fs.readFileSync(${JSON.stringify(expectedFile)});
          const dw = w.beginDisk({ device: 'vda', virtualSize: base.virtualSize, base });
          for (const i of ${JSON.stringify(REUSED)}) await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
          process.stdout.write('reused\\n');
          for (const i of ${JSON.stringify(NEW)}) {
            await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
            await new Promise((r) => setTimeout(r, 150));
          }
          await dw.finish();
          await new Promise((r) => setTimeout(r, 150));
          const m = await w.commit({
            disks: [{ device: 'vda', node: 'n', format: 'qcow2', mode: 'incremental', reason: 'incremental', bitmap: 'b', bitmapPersistent: true, bytesRead: 0 }],
            consistency: 'crash', vmDefinition: null,
          });
          process.stdout.write(JSON.stringify({ pointId: m.pointId }) + '\\n');
          await repo.close();
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const said = (word: string): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (out.includes(`${word}\n`)) resolve();
          };
          child.stdout.on('data', check);
          check();
          void exited.then((code) => reject(new Error(`writer exited early (${code})`)));
        });
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
      });
      await said('base');
      await hooks.afterBaseRead();
      child.stdin.end('go\n'); // ended, so the child can exit
      await said('reused');
      hooks.afterReuse();
      expect(await exited).toBe(0);
      const last = out.trim().split('\n').pop() as string;
      return (JSON.parse(last) as { pointId: string }).pointId;
    });
  });
});

interface WriterHooks {
  afterBaseRead(): Promise<void>;
  afterReuse(): void;
}
/** Chunks whose content the repository already holds (garbage), then chunks of new data. */
const REUSED = [1, 3];
const NEW = [5, 6];

/** As a backup: lock (beginPoint), read the parent's index, then store the dirty chunks, the
 *  new ones slowly. */
async function writePointSlowly(repo: Repository, parent: Manifest, expected: Buffer, hooks: WriterHooks): Promise<Manifest> {
  const at = new Date();
  const w = await repo.beginPoint({ vm: vmB, pointId: newPointId(at), createdAt: at, parentPointId: parent.pointId });
  const base = await repo.readIndex(parent.pointId, 'vda');
  await hooks.afterBaseRead();
  const dw = w.beginDisk({ device: 'vda', virtualSize: base.virtualSize, base });
  for (const i of REUSED) await dw.putChunk(i, Buffer.from(expected.subarray(i * CS, (i + 1) * CS)));
  hooks.afterReuse();
  for (const i of NEW) {
    await dw.putChunk(i, Buffer.from(expected.subarray(i * CS, (i + 1) * CS)));
    await new Promise((r) => setTimeout(r, 150));
  }
  await dw.finish();
  await new Promise((r) => setTimeout(r, 150));
  return w.commit({
    disks: [{ device: 'vda', node: 'n', format: 'qcow2', mode: 'incremental', reason: 'incremental', bitmap: 'b', bitmapPersistent: true, bytesRead: 0 }],
    consistency: 'crash',
    vmDefinition: null,
  });
}
