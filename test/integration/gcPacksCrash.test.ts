import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Repository, VmIdentity } from '../../backend/src/repository';
import { V2, V2_ENCRYPTED, type RepoFormat } from '../helpers/repoFormats';
import { agePacks, indexFileNames, openOptions, packFiles, REPO_MODULE, ScriptProcess, scratchPackRepositories } from './packFixture';
import { CS, mutate, readImage, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
const vmG: VmIdentity = { key: 'vm-g', name: 'garbage' };

/**
 * A repository where a collection has everything to do: a point to keep (vm-a), a point whose
 * parent was deleted (vm-b: the parent's first pack is half garbage, its index node all
 * garbage), and a deleted point of vm-g (two packs of garbage); every pack old.
 */
async function scene(repo: Repository): Promise<Array<{ pointId: string; image: Buffer }>> {
  const keepImg = randomBytes(4 * CS);
  const keep = await writePoint(repo, vmA, [{ device: 'vda', image: keepImg }]);
  const img1 = randomBytes(8 * CS);
  const p1 = await writePoint(repo, vmB, [{ device: 'vda', image: img1 }]);
  const img2 = mutate(img1, [0, 1]);
  const p2 = await writePoint(repo, vmB, [{ device: 'vda', image: img2, dirty: [0, 1] }], { parent: p1 });
  const g = await writePoint(repo, vmG, [{ device: 'vda', image: randomBytes(4 * CS) }]);
  await repo.deletePoint(p1.pointId, { reason: 'old', actor: 'test' });
  await repo.deletePoint(g.pointId, { reason: 'garbage', actor: 'test' });
  await agePacks(repo.dir, HOUR);
  return [
    { pointId: keep.pointId, image: keepImg },
    { pointId: p2.pointId, image: img2 },
  ];
}

/** A collection in another process, killed with SIGKILL once it reaches `phase`. */
async function killedAt(repo: Repository, format: RepoFormat, phase: string): Promise<void> {
  const gc = new ScriptProcess(`
    const { Repository } = require(${JSON.stringify(REPO_MODULE)});
    (async () => {
      const repo = await Repository.open(${JSON.stringify(repo.dir)}, ${openOptions(format)});
      await repo.gc({
        graceMs: 0,
        repackBelow: 0.75,
        testHook: async (phase) => {
          if (phase !== ${JSON.stringify(phase)}) return;
          console.log(phase);
          await new Promise((r) => setTimeout(r, 60000)); // killed long before
          process.exit(3);
        },
      });
      console.log('finished');
    })().catch((e) => { console.error(e); process.exit(1); });`);
  try {
    await gc.said(phase);
  } finally {
    gc.child.kill('SIGKILL');
    await gc.exited;
  }
}

describe.each([V2, V2_ENCRYPTED])('a format-2 collection killed in the middle, $name', (format) => {
  const { newRepo } = scratchPackRepositories('olvm-gccrash-', format);

  test.each([
    // new packs and their index file written, no old pack touched yet
    ['repacked', 0],
    // the first pack moved into gc-pending/, the consolidated index not written
    ['aside', 1],
    // the consolidated index written, the replaced index files and the packs aside still there
    ['consolidated', 4],
  ])('killed at %s: the next collection finishes the job, nothing is lost', async (phase, leftovers) => {
    const repo = await newRepo();
    const points = await scene(repo);
    const files = await indexFileNames(repo.dir);
    await killedAt(repo, format, phase);
    const pending = await fs.readdir(path.join(repo.dir, 'gc-pending')).catch(() => []);
    expect(pending).toHaveLength(leftovers);
    if (phase === 'repacked') expect(await indexFileNames(repo.dir)).toHaveLength(files.length + 1);
    if (phase === 'consolidated') expect((await indexFileNames(repo.dir)).length).toBeGreaterThan(files.length);

    const next = await repo.gc({ graceMs: 0, repackBelow: 0.75 });
    expect(next.leftoversRestored).toBe(leftovers);
    // of the three packs of garbage and the half-garbage pack, none is left; the pack written
    // by the killed collection holds what the half-garbage one held of value
    expect(await packFiles(repo.dir)).toHaveLength(5);
    expect(next.packsWritten).toBe(0);
    expect(await fs.readdir(path.join(repo.dir, 'gc-pending'))).toEqual([]);
    expect(await fs.readdir(path.join(repo.dir, 'tmp')).then((n) => n.filter((x) => x === '.gc'))).toEqual([]);
    expect(await indexFileNames(repo.dir)).toHaveLength(1);
    for (const p of points) expect((await readImage(repo, p.pointId, 'vda')).equals(p.image)).toBe(true);
    const v = await repo.verify({ repair: false });
    expect(v.problems).toEqual([]);
    // and nothing more to do
    await agePacks(repo.dir, HOUR);
    expect(await repo.gc({ graceMs: 0, repackBelow: 0.75 })).toMatchObject({ packsRemoved: 0, packsWritten: 0, indexFilesMerged: 0 });
  });
});
