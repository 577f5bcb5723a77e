import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Repository, VerifyProblem, VmIdentity } from '../../backend/src/repository';
import { openRepo, V2, V2_ENCRYPTED } from '../helpers/repoFormats';
import { agePacks, blobLocation, flipByte, indexFileNames, scratchPackRepositories } from './packFixture';
import { readIndexFile } from '../../backend/src/repository/repoIndex';
import { CS, expectCode, readImage, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };

/** The problems without their messages (checked apart), in a stable order. */
function shape(problems: readonly VerifyProblem[]): Array<Omit<VerifyProblem, 'message'>> {
  return problems
    .map(({ message: _m, ...rest }) => rest)
    .sort((a, b) => `${a.kind}:${a.pointId}:${a.offset}`.localeCompare(`${b.kind}:${b.pointId}:${b.offset}`));
}

async function expectExact(repo: Repository, pointId: string, image: Buffer): Promise<void> {
  expect((await readImage(repo, pointId, 'vda')).equals(image)).toBe(true);
}

describe.each([V2, V2_ENCRYPTED])('verify of format 2 (packs), $name', (format) => {
  const { newRepo } = scratchPackRepositories('olvm-verifypacks-', format);

  /** Runs `fn` on the repository as a process that opens it now would see it. */
  async function fresh<T>(repo: Repository, fn: (r: Repository) => Promise<T>): Promise<T> {
    const r = await openRepo(repo.dir, format, { workers: 1 });
    try {
      return await fn(r);
    } finally {
      await r.close();
    }
  }

  /** vm-a: 8 chunks; vm-b: 4 chunks, its first the same as vm-a's chunk 2. */
  async function twoPoints(repo: Repository): Promise<{ a: string; b: string; imgA: Buffer; imgB: Buffer }> {
    const imgA = randomBytes(8 * CS);
    const a = await writePoint(repo, vmA, [{ device: 'vda', image: imgA }]);
    const imgB = Buffer.concat([imgA.subarray(2 * CS, 3 * CS), randomBytes(3 * CS)]);
    const b = await writePoint(repo, vmB, [{ device: 'vda', image: imgB }]);
    return { a: a.pointId, b: b.pointId, imgA, imgB };
  }

  test('a flipped byte in a pack: the pack, the chunk and every point and disk using it are named; quarantine, then a backup of the same content heals', async () => {
    const repo = await newRepo();
    const { a, b, imgA, imgB } = await twoPoints(repo);
    const chunk = (await repo.readIndex(a, 'vda')).digestHex(2);
    const loc = await blobLocation(repo.dir, chunk);
    await flipByte(loc.file, loc.offset + 1000);

    const report = await repo.verify({ repair: false });
    expect(report.ok).toBe(false);
    expect(report.packsChecked).toBe(4);
    expect(report.indexFilesChecked).toBe(2);
    expect(shape(report.problems)).toEqual([
      { pointId: a, device: 'vda', chunk, offset: 2 * CS, kind: 'chunk-corrupt', pack: loc.pack },
      { pointId: b, device: 'vda', chunk, offset: 0, kind: 'chunk-corrupt', pack: loc.pack },
      { pointId: null, device: null, chunk: null, offset: null, kind: 'pack-corrupt', pack: loc.pack, blobs: [chunk] },
    ]);
    const packProblem = report.problems.find((p) => p.kind === 'pack-corrupt');
    expect(packProblem?.message).toContain(loc.pack);
    expect(packProblem?.message).toContain(chunk);
    expect(report.points.map((p) => [p.pointId, p.status, p.damagedDevices])).toEqual([
      [a, 'damaged', ['vda']],
      [b, 'damaged', ['vda']],
    ]);
    // a verify of one point checks its chunks, not the packs
    const one = await repo.verify({ pointId: b, repair: false });
    expect(one.packsChecked).toBeUndefined();
    expect(shape(one.problems)).toEqual([{ pointId: b, device: 'vda', chunk, offset: 0, kind: 'chunk-corrupt', pack: loc.pack }]);

    const repaired = await repo.verify();
    expect(repaired.quarantined).toEqual([chunk]);
    expect(repaired.marked.sort()).toEqual([a, b].sort());
    expect(await fs.readdir(path.join(repo.dir, 'quarantine'))).toEqual([`${chunk}.${loc.pack}`]);
    expect((await repo.auditLog()).filter((r) => r.action === 'chunk-quarantine')).toMatchObject([{ details: { chunk, pack: loc.pack } }]);
    // quarantined: no process reads it any more (a fresh one neither)
    const after = await fresh(repo, (r) => r.verify({ repair: false }));
    expect(shape(after.problems).map((p) => [p.kind, p.pointId])).toEqual([
      ['chunk-missing', a],
      ['chunk-missing', b],
    ]);
    expect(after.problems[0]?.message).toContain('quarantined');

    // the next backup of vm-b reads the same content: it stores a good copy in a new pack
    const healed = await writePoint(repo, vmB, [{ device: 'vda', image: imgB }]);
    expect(healed.disks[0]?.chunksNew).toBe(1);
    const clean = await repo.verify();
    expect(clean.problems).toEqual([]);
    expect(clean.cleared.sort()).toEqual([a, b].sort());
    for (const [id, img] of [
      [a, imgA],
      [b, imgB],
      [healed.pointId, imgB],
    ] as const)
      await expectExact(repo, id, img);

    // the collection counts the quarantined copy as dead: its pack (3 of 4 blobs live) is
    // rewritten without it, and the record goes with the pack
    await agePacks(repo.dir, HOUR);
    const gc = await repo.gc({ graceMs: 0, repackBelow: 0.8 });
    expect(gc).toMatchObject({ packsRepacked: 1, chunksRemoved: 1 });
    expect(await fs.readdir(path.join(repo.dir, 'quarantine'))).toEqual([]);
    expect((await repo.verify({ repair: false })).problems).toEqual([]);
    await expectExact(repo, a, imgA);
  });

  test('a truncated pack and a missing pack: named with their blobs, and every chunk they cost', async () => {
    const repo = await newRepo();
    const { a, b } = await twoPoints(repo);
    const idx = await repo.readIndex(a, 'vda');
    const c6 = await blobLocation(repo.dir, idx.digestHex(6));
    await fs.chmod(c6.file, 0o644);
    await fs.truncate(c6.file, c6.offset + 100);
    const cut = await repo.verify({ repair: false });
    expect(shape(cut.problems)).toEqual([
      { pointId: a, device: 'vda', chunk: idx.digestHex(6), offset: 6 * CS, kind: 'chunk-corrupt', pack: c6.pack },
      { pointId: a, device: 'vda', chunk: idx.digestHex(7), offset: 7 * CS, kind: 'chunk-corrupt', pack: c6.pack },
      { pointId: null, device: null, chunk: null, offset: null, kind: 'pack-truncated', pack: c6.pack, blobs: [idx.digestHex(6), idx.digestHex(7)] },
    ]);
    expect(cut.problems.find((p) => p.kind === 'pack-truncated')?.message).toMatch(/truncated/);

    const c0 = await blobLocation(repo.dir, idx.digestHex(0));
    await fs.rm(c0.file);
    const gone = await repo.verify({ repair: false });
    const missing = shape(gone.problems).filter((p) => p.kind !== 'chunk-corrupt' && p.kind !== 'pack-truncated');
    expect(missing).toEqual(
      shape([
        ...[0, 1, 2, 3].map((i) => ({ pointId: a, device: 'vda', chunk: idx.digestHex(i), offset: i * CS, kind: 'chunk-missing' as const, pack: c0.pack, message: '' })),
        // vm-b's chunk 0 is vm-a's chunk 2
        { pointId: b, device: 'vda', chunk: idx.digestHex(2), offset: 0, kind: 'chunk-missing', pack: c0.pack, message: '' },
        { pointId: null, device: null, chunk: null, offset: null, kind: 'pack-missing', pack: c0.pack, blobCount: 4, message: '' },
      ]),
    );
    expect(gone.problems.find((p) => p.kind === 'pack-missing')?.message).toContain('4 blob(s)');
    // a missing pack is nothing to quarantine; the truncated pack's two blobs are
    const repaired = await repo.verify();
    expect(repaired.quarantined.sort()).toEqual([idx.digestHex(6), idx.digestHex(7)].sort());
  });

  test('a pack a crashed collection left in gc-pending/ is reported until the next collection puts it back', async () => {
    const repo = await newRepo();
    const { a, imgA } = await twoPoints(repo);
    const loc = await blobLocation(repo.dir, (await repo.readIndex(a, 'vda')).digestHex(5));
    await fs.mkdir(path.join(repo.dir, 'gc-pending'), { recursive: true });
    await fs.rename(loc.file, path.join(repo.dir, 'gc-pending', loc.pack));
    const report = await repo.verify({ repair: false });
    const pm = report.problems.find((p) => p.kind === 'pack-missing');
    expect(pm).toMatchObject({ pack: loc.pack, blobCount: 4 });
    expect(pm?.message).toContain('gc-pending');
    expect((await repo.gc({ graceMs: 0 })).leftoversRestored).toBe(1);
    expect((await repo.verify({ repair: false })).problems).toEqual([]);
    await expectExact(repo, a, imgA);
  });

  test('a tampered index root or tree node is index-corrupt, naming the disk (and the node and its pack); a new backup heals the node', async () => {
    const repo = await newRepo();
    const { a, b, imgA, imgB } = await twoPoints(repo);
    const m = await repo.readManifest(b);
    const rootFile = path.join(repo.dir, 'points', b, m.disks[0]!.index.file);
    const good = await fs.readFile(rootFile);
    await fs.writeFile(rootFile, Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([good[good.length - 1]! ^ 1])]));
    const tampered = await repo.verify({ repair: false });
    expect(shape(tampered.problems)).toEqual([{ pointId: b, device: 'vda', chunk: null, offset: null, kind: 'index-corrupt' }]);
    await fs.writeFile(rootFile, good);

    const idx = await repo.readIndex(a, 'vda');
    const node = idx.tree![0]!.toString('hex');
    const loc = await blobLocation(repo.dir, node);
    await flipByte(loc.file, loc.offset + 40);
    const report = await fresh(repo, (r) => r.verify({ repair: false }));
    expect(shape(report.problems)).toEqual([
      { pointId: a, device: 'vda', chunk: null, offset: null, kind: 'index-corrupt', node, pack: loc.pack },
      { pointId: null, device: null, chunk: null, offset: null, kind: 'pack-corrupt', pack: loc.pack, blobs: [node] },
    ]);
    expect(report.problems[0]?.message).toContain(node);

    const repaired = await repo.verify();
    expect(repaired.quarantined).toEqual([node]);
    expect(repaired.marked).toEqual([a]);
    expect(await repo.damageOf(a)).toMatchObject({ devices: ['vda'] });
    // the next backup of vm-a copies the disk whole (its parent is damaged) and stores the node
    // again, in a new pack (the quarantined copy is never relied on)
    const healed = await writePoint(repo, vmA, [{ device: 'vda', image: imgA }]);
    expect(healed.disks[0]).toMatchObject({ chunksNew: 0 });
    const clean = await repo.verify();
    expect(clean.problems).toEqual([]);
    expect(clean.cleared).toEqual([a]);
    await expectExact(repo, a, imgA);
    await expectExact(repo, b, imgB);
    await fresh(repo, (r) => expectExact(r, healed.pointId, imgA));
    await agePacks(repo.dir, HOUR);
    // the damaged pack held nothing else: the collection removes it, and its quarantine record
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ packsRemoved: 1 });
    await expect(fs.access(loc.file)).rejects.toThrow();
    expect(await fs.readdir(path.join(repo.dir, 'quarantine'))).toEqual([]);
    expect((await repo.verify({ repair: false })).problems).toEqual([]);
  });

  test('a damaged repository index file is reported, rebuilt from the packs by the repair, and the collection works again', async () => {
    const repo = await newRepo();
    const { a, b, imgA, imgB } = await twoPoints(repo);
    // the index file of vm-a's packs
    const nodePack = (await blobLocation(repo.dir, (await repo.readIndex(a, 'vda')).tree![0]!.toString('hex'))).pack;
    let first: string | undefined;
    for (const name of await indexFileNames(repo.dir)) if ((await readIndexFile(repo.dir, name)).packs.some((p) => p.name === nodePack)) first = name;
    const file = path.join(repo.dir, 'index', first!);
    await flipByte(file, 40);
    // as a process that opens the repository now sees it: vm-a's packs are in no readable index
    // (vm-b's chunk 0 is in one of them)
    const report = await fresh(repo, (r) => r.verify({ repair: false }));
    expect(shape(report.problems).map((p) => [p.kind, p.pointId, p.indexFile ?? null])).toEqual([
      ['chunk-missing', b, null],
      ['index-corrupt', a, null],
      ['repo-index-corrupt', null, first],
    ]);
    await expectCode(fresh(repo, (r) => r.gc({ graceMs: 0 })), 'REPO_CORRUPT');

    const repaired = await fresh(repo, (r) => r.verify());
    expect(repaired.marked.sort()).toEqual([a, b].sort());
    expect(await indexFileNames(repo.dir)).not.toContain(first);
    expect(await fs.readdir(path.join(repo.dir, 'quarantine'))).toContain(`index-${first}`);
    const clean = await fresh(repo, (r) => r.verify());
    expect(clean.problems).toEqual([]);
    expect(clean.cleared.sort()).toEqual([a, b].sort());
    await agePacks(repo.dir, HOUR);
    await fresh(repo, async (r) => {
      expect(await r.gc({ graceMs: 0 })).toMatchObject({ packsRemoved: 0 });
      await expectExact(r, a, imgA);
      await expectExact(r, b, imgB);
    });
  });
});

