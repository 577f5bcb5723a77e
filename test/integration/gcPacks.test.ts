import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Repository, VmIdentity } from '../../backend/src/repository';
import { deleteChecked } from '../../backend/src/repository/retention';
import { V2, V2_ENCRYPTED } from '../helpers/repoFormats';
import { agePacks, indexFileNames, openOptions, packBytes, packFiles, REPO_MODULE, ScriptProcess, scratchPackRepositories } from './packFixture';
import { CS, expectCode, mutate, readImage, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
const vmG: VmIdentity = { key: 'vm-g', name: 'garbage' };

async function expectExact(repo: Repository, pointId: string, image: Buffer): Promise<void> {
  expect((await readImage(repo, pointId, 'vda')).equals(image)).toBe(true);
}

async function expectClean(repo: Repository): Promise<void> {
  const v = await repo.verify({ repair: false });
  expect(v.problems).toEqual([]);
  expect(v.ok).toBe(true);
}

describe.each([V2, V2_ENCRYPTED])('garbage collection of format 2 (packs), $name', (format) => {
  const { newRepo, dir } = scratchPackRepositories('olvm-gcpacks-', format);

  test('a deleted point frees its packs (young ones only after the grace period); shared chunks stay; dry run only counts', async () => {
    const repo = await newRepo();
    const imgA = randomBytes(8 * CS);
    const a = await writePoint(repo, vmA, [{ device: 'vda', image: imgA }]);
    // vm-g shares chunks 0 and 1 with vm-a; its six others and its index node are its own
    const imgG = Buffer.concat([imgA.subarray(0, 2 * CS), randomBytes(6 * CS)]);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image: imgG }]);
    expect(await packFiles(repo.dir)).toHaveLength(5); // a: 4 + 4 chunks, node; g: 4 chunks, 2 + node
    await repo.deletePoint(g.pointId, { reason: 'make garbage', actor: 'test' });
    const before = await packBytes(repo.dir);

    const young = await repo.gc({ graceMs: HOUR });
    expect(young).toMatchObject({ packsScanned: 5, packsKeptYoung: 5, packsRemoved: 0, chunksRemoved: 0, chunksKeptYoung: 7, indexFilesMerged: 2 });
    expect(await indexFileNames(repo.dir)).toHaveLength(1);

    await agePacks(repo.dir, 2 * HOUR);
    const dry = await repo.gc({ graceMs: HOUR, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, packsRemoved: 2, packsRepacked: 0, chunksRemoved: 7, packsKeptYoung: 0 });
    expect(await packBytes(repo.dir)).toBe(before);

    const real = await repo.gc({ graceMs: HOUR, actor: 'nightly' });
    expect(real).toMatchObject({ dryRun: false, packsRemoved: 2, chunksRemoved: 7, bytesRemoved: dry.bytesRemoved, packsPutBack: 0, packsWritten: 0 });
    expect(real.bytesRemoved).toBeGreaterThan(6 * CS);
    expect(await packBytes(repo.dir)).toBe(before - real.bytesRemoved);
    expect(await packFiles(repo.dir)).toHaveLength(3);
    expect(await indexFileNames(repo.dir)).toHaveLength(1);
    expect(await fs.readdir(path.join(repo.dir, 'gc-pending'))).toEqual([]);
    await expectExact(repo, a.pointId, imgA);
    await expectClean(repo);
    const records = (await repo.auditLog()).filter((r) => r.action === 'gc');
    expect(records).toHaveLength(2); // not the dry run
    expect(records[1]).toMatchObject({ actor: 'nightly', details: { packsRemoved: 2, chunksRemoved: 7, packsRepacked: 0 } });
    // nothing more to do
    expect(await repo.gc({ graceMs: HOUR })).toMatchObject({ packsRemoved: 0, indexFilesMerged: 0 });
  });

  test('a pack whose live share falls below repackBelow is rewritten without its dead blobs; points stay exact', async () => {
    const repo = await newRepo();
    const img1 = randomBytes(8 * CS);
    const p1 = await writePoint(repo, vmA, [{ device: 'vda', image: img1 }]);
    const packs1 = await packFiles(repo.dir);
    const img2 = mutate(img1, [0, 1]);
    const p2 = await writePoint(repo, vmA, [{ device: 'vda', image: img2, dirty: [0, 1] }], { parent: p1 });
    await repo.deletePoint(p1.pointId, { reason: 'old', actor: 'test' });
    await agePacks(repo.dir, HOUR);

    // p1's first pack now holds two live chunks of four: exactly half, not below the default 0.5;
    // its index node alone is garbage
    const first = await repo.gc({ graceMs: 0 });
    expect(first).toMatchObject({ packsRemoved: 1, packsRepacked: 0, chunksRemoved: 1, packsWritten: 0 });
    await expectExact(repo, p2.pointId, img2);

    const bytes = await packBytes(repo.dir);
    const second = await repo.gc({ graceMs: 0, repackBelow: 0.75 });
    expect(second).toMatchObject({ packsRemoved: 1, packsRepacked: 1, packsWritten: 1, chunksRemoved: 2 });
    expect(second.bytesRepacked).toBeGreaterThanOrEqual(2 * CS);
    expect(second.bytesRepacked).toBeLessThan(3 * CS);
    expect(await packBytes(repo.dir)).toBe(bytes - second.bytesRemoved);
    expect(second.bytesRemoved).toBeGreaterThanOrEqual(2 * CS);
    const now = await packFiles(repo.dir);
    expect(now.filter((f) => packs1.includes(f))).toHaveLength(1); // of p1's packs only the one of chunks 4..7
    expect(await indexFileNames(repo.dir)).toHaveLength(1);
    expect(await fs.readdir(path.join(repo.dir, 'tmp', '.gc')).catch(() => [])).toEqual([]);
    await expectExact(repo, p2.pointId, img2);
    await expectClean(repo);
    // the rewritten pack is young: left alone; later, nothing is dead any more
    await agePacks(repo.dir, HOUR);
    expect(await repo.gc({ graceMs: 0, repackBelow: 0.75 })).toMatchObject({ packsRemoved: 0, packsRepacked: 0, chunksRemoved: 0 });
    await expectCode(repo.gc({ repackBelow: 1.5 }), 'INVALID_ARGUMENT');
  });

  test('a writer in another process reuses blobs of packs the collection is removing: what it relied on is put back, the rest it stores again', async () => {
    const repo = await newRepo();
    const keepImg = randomBytes(4 * CS);
    const keep = await writePoint(repo, vmA, [{ device: 'vda', image: keepImg }]);
    const imgG = randomBytes(8 * CS);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image: imgG }]);
    await repo.deletePoint(g.pointId, { reason: 'make garbage', actor: 'test' });
    await agePacks(repo.dir, 2 * HOUR);
    const imageFile = path.join(dir(), `image-${Date.now()}.raw`);
    await fs.writeFile(imageFile, imgG);
    // the writer stores exactly vm-g's content: every blob of vm-g's three packs, node included
    const writer = new ScriptProcess(`
      const { Repository, newPointId } = require(${JSON.stringify(REPO_MODULE)});
      const fs = require('fs');
      const CS = ${CS};
      const line = () => new Promise((resolve) => process.stdin.once('data', resolve));
      (async () => {
        const repo = await Repository.open(${JSON.stringify(repo.dir)}, ${openOptions(format)});
        const at = new Date();
        const w = await repo.beginPoint({ vm: ${JSON.stringify(vmB)}, pointId: newPointId(at), createdAt: at, parentPointId: null });
        console.log('ready');
        await line();
        const image = fs.readFileSync(${JSON.stringify(imageFile)});
        const dw = w.beginDisk({ device: 'vda', virtualSize: image.length });
        for (let i = 0; i < 8; i++) await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
        await dw.finish();
        console.log('reused');
        const m = await w.commit({
          disks: [{ device: 'vda', node: 'n', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'b', bitmapPersistent: true, bytesRead: 0 }],
          consistency: 'crash', vmDefinition: null,
        });
        console.log(JSON.stringify({ pointId: m.pointId, stats: m.disks[0] }));
        await repo.close();
      })().catch((e) => { console.error(e); process.exit(1); });`);
    try {
      await writer.said('ready');
      let asides = 0;
      // the collection marked, chose vm-g's three packs, and has just moved the first aside:
      // now the writer stores vm-g's content and relies on the two packs still in place
      const report = await repo.gc({
        graceMs: 0,
        testHook: async (phase) => {
          if (phase !== 'aside' || asides++ > 0) return;
          writer.send('go', true);
          await writer.said('reused');
        },
      });
      expect(report).toMatchObject({ liveWriters: 1, packsRemoved: 1, packsPutBack: 2 });
      expect(await writer.exited).toBe(0);
      const last = JSON.parse(writer.stdout.trim().split('\n').pop() as string) as { pointId: string; stats: { chunksNew: number; chunksReused: number } };
      // the blobs of the pack moved aside were stored again; those in the two others reused
      expect(last.stats.chunksNew + last.stats.chunksReused).toBe(8);
      expect(last.stats.chunksReused).toBeGreaterThan(0);
      await expectExact(repo, last.pointId, imgG);
      await expectExact(repo, keep.pointId, keepImg);
      await expectClean(repo);
      // much later, with the writer gone: nothing it relies on goes
      await agePacks(repo.dir, 2 * HOUR);
      await repo.gc({ graceMs: 0 });
      await expectExact(repo, last.pointId, imgG);
      await expectClean(repo);
    } finally {
      writer.child.kill('SIGKILL');
      await writer.exited;
    }
  });

  /**
   * As format 1's test of the same name: a backup in another process, with a collection running
   * again and again (no grace, repacking nearly everything) from the moment it has reused blobs
   * of garbage until after its commit. It refers to blobs three ways: found stored (vm-g's
   * garbage), carried over from its parent (deleted while it runs; its index nodes too), and new.
   */
  test('gc running again and again while a backup in another process writes: the new point restores exactly', async () => {
    const repo = await newRepo();
    const image = randomBytes(8 * CS);
    const parent = await writePoint(repo, vmB, [{ device: 'vda', image }]);
    const imgG = randomBytes(8 * CS);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image: imgG }]);
    await repo.deletePoint(g.pointId, { reason: 'make garbage', actor: 'test' });
    await agePacks(repo.dir, 2 * HOUR);
    // chunks 1 and 3 now hold what vm-g's chunks 0 and 1 held; 5 and 6 are new; the rest carried over
    const expected = mutate(image, [5, 6]);
    imgG.copy(expected, 1 * CS, 0, CS);
    imgG.copy(expected, 3 * CS, CS, 2 * CS);
    const expectedFile = path.join(dir(), `expected-${Date.now()}.raw`);
    await fs.writeFile(expectedFile, expected);
    const writer = new ScriptProcess(`
      const { Repository, newPointId } = require(${JSON.stringify(REPO_MODULE)});
      const fs = require('fs');
      const CS = ${CS};
      const line = () => new Promise((resolve) => process.stdin.once('data', resolve));
      (async () => {
        const repo = await Repository.open(${JSON.stringify(repo.dir)}, ${openOptions(format)});
        const at = new Date();
        const w = await repo.beginPoint({ vm: ${JSON.stringify(vmB)}, pointId: newPointId(at), createdAt: at, parentPointId: ${JSON.stringify(parent.pointId)} });
        const base = await repo.readIndex(${JSON.stringify(parent.pointId)}, 'vda');
        console.log('base');
        await line();
        const image = fs.readFileSync(${JSON.stringify(expectedFile)});
        const dw = w.beginDisk({ device: 'vda', virtualSize: base.virtualSize, base });
        for (const i of [1, 3]) await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
        console.log('reused');
        for (const i of [5, 6]) {
          await dw.putChunk(i, Buffer.from(image.subarray(i * CS, (i + 1) * CS)));
          await new Promise((r) => setTimeout(r, 150));
        }
        await dw.finish();
        await new Promise((r) => setTimeout(r, 150));
        const m = await w.commit({
          disks: [{ device: 'vda', node: 'n', format: 'qcow2', mode: 'incremental', reason: 'incremental', bitmap: 'b', bitmapPersistent: true, bytesRead: 0 }],
          consistency: 'crash', vmDefinition: null,
        });
        console.log(JSON.stringify({ pointId: m.pointId, stats: m.disks[0] }));
        await repo.close();
      })().catch((e) => { console.error(e); process.exit(1); });`);
    const runs: Array<Awaited<ReturnType<Repository['gc']>>> = [];
    let stop = false;
    let loop: Promise<void> | undefined;
    try {
      await writer.said('base');
      expect((await repo.deletePoint(parent.pointId, { reason: 'pruned mid-backup', actor: 'test' })).deferred).toBe(true);
      writer.send('go', true);
      await writer.said('reused');
      loop = (async () => {
        while (!stop) runs.push(await repo.gc({ graceMs: 0, repackBelow: 0.9 }));
      })();
      expect(await writer.exited).toBe(0);
    } finally {
      stop = true;
      await loop;
      writer.child.kill('SIGKILL');
    }
    const during = runs.length;
    for (let i = 0; i < 3; i++) runs.push(await repo.gc({ graceMs: 0, repackBelow: 0.9 }));
    expect(during).toBeGreaterThan(3);
    expect(runs.some((r) => r.trashKept.includes(parent.pointId))).toBe(true);
    expect(runs.some((r) => r.trashPurged.includes(parent.pointId))).toBe(true);
    expect(runs.reduce((n, r) => n + (r.packsRepacked ?? 0), 0)).toBeGreaterThan(0);
    const last = JSON.parse(writer.stdout.trim().split('\n').pop() as string) as { pointId: string; stats: { chunksNew: number; chunksReused: number } };
    // the two garbage chunks were found stored, not stored again
    expect(last.stats).toMatchObject({ chunksNew: 2, chunksReused: 6, chunksZero: 0 });
    await expectExact(repo, last.pointId, expected);
    await expectClean(repo);
    expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([last.pointId]);
  });

  test('gc.lock lets one collection run at a time', async () => {
    const repo = await newRepo();
    await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]);
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const atHook = new Promise<void>((resolve) => (reached = resolve));
    const first = repo.gc({
      graceMs: 0,
      testHook: async (phase) => {
        if (phase !== 'repacked') return;
        reached();
        await paused;
      },
    });
    try {
      await atHook;
      const busy = await expectCode(repo.gc({ graceMs: 0 }), 'REPO_LOCKED');
      expect(busy.message).toMatch(/gc lock is locked by pid/);
    } finally {
      release();
    }
    await first;
    await repo.gc({ graceMs: 0 }); // free again
  });

  test('young packs and packs younger than a live writer on another host are kept', async () => {
    const repo = await newRepo();
    const g = await writePoint(repo, vmG, [{ device: 'vda', image: randomBytes(4 * CS) }]);
    await repo.deletePoint(g.pointId, { reason: 'garbage', actor: 'test' });
    expect(await repo.gc({ graceMs: HOUR })).toMatchObject({ packsRemoved: 0, packsKeptYoung: 2, chunksKeptYoung: 5 });
    await agePacks(repo.dir, HOUR);
    const lockFile = path.join(repo.dir, 'locks', 'vm-far.lock');
    const startedAt = new Date(Date.now() - 2 * HOUR).toISOString();
    await fs.writeFile(lockFile, JSON.stringify({ vmKey: 'far', pid: 1, hostname: 'other.example', bootId: null, startedAt, pointId: null, nonce: 'ff' }));
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ liveWriters: 1, packsRemoved: 0, packsKeptYoung: 2 });
    await fs.rm(lockFile);
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ packsRemoved: 2, chunksRemoved: 5 });
    expect(await packFiles(repo.dir)).toEqual([]);
  });

  test('a deleted point a reader still reads keeps its blobs until the reader is done', async () => {
    const repo = await newRepo();
    const image = randomBytes(4 * CS);
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    const r = await repo.openPoint(m.pointId, { purpose: 'restore', holder: 'test' });
    try {
      // as a deletion whose lease check came just before the reader's lease
      expect(await deleteChecked(repo.dir, m, { actor: 'admin', reason: 'raced' })).toMatchObject({ deferred: true });
      await agePacks(repo.dir, 2 * HOUR);
      const report = await repo.gc({ graceMs: 0 });
      expect(report).toMatchObject({ packsRemoved: 0, chunksKeptForLeases: 5, leasedPoints: [m.pointId], trashKept: [m.pointId] });
      const index = await r.index('vda');
      const parts: Buffer[] = [];
      for (let i = 0; i < index.count; i++) parts.push(await r.readChunk(index.digest(i), index.chunkLength(i)));
      expect(Buffer.concat(parts).equals(image)).toBe(true);
    } finally {
      await r.release();
    }
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ trashPurged: [m.pointId], packsRemoved: 0 });
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ packsRemoved: 2, chunksRemoved: 5 });
  });

  test('an unreadable repository index file or point index stops the collection before anything goes', async () => {
    const repo = await newRepo();
    const image = randomBytes(2 * CS);
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image: randomBytes(4 * CS) }]);
    await repo.deletePoint(g.pointId, { reason: 'garbage', actor: 'test' });
    await agePacks(repo.dir, HOUR);
    const packs = await packFiles(repo.dir);
    const bogus = path.join(repo.dir, 'index', 'ab'.repeat(32));
    await fs.writeFile(bogus, 'not an index');
    const refused = await expectCode(repo.gc({ graceMs: 0 }), 'REPO_CORRUPT');
    expect(refused.message).toContain('ab'.repeat(32));
    await fs.rm(bogus);
    const idx = path.join(repo.dir, 'points', m.pointId, m.disks[0]!.index.file);
    const good = await fs.readFile(idx);
    await fs.writeFile(idx, 'garbage');
    const refused2 = await expectCode(repo.gc({ graceMs: 0 }), 'REPO_CORRUPT');
    expect(refused2.message).toContain(m.pointId);
    expect(await packFiles(repo.dir)).toEqual(packs);
    await fs.writeFile(idx, good);
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ packsRemoved: 2 });
    await expectExact(repo, m.pointId, image);
  });
});
