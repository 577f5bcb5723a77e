import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Repository, type VmIdentity } from '../../backend/src/repository';
import { restoredBytes } from '../helpers/backupFixture';
import { childSaid, otherAccount, shareWithGroup, spawnNodeAs, type Account } from '../helpers/otherAccount';
import { ageChunks, chunkFiles, CS, readImage, scratchRepositories, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmG: VmIdentity = { key: 'vm-g', name: 'garbage' };
const vmO: VmIdentity = { key: 'vm-o', name: 'other' };
const MODULE = path.join(__dirname, '..', '..', 'backend', 'src', 'repository');

/**
 * A writer running as `account` stores `image` as a point of vm-o (one disk, every chunk put),
 * says `reused` once every chunk is put and waits for a line on stdin before it finishes the
 * disk and commits: what it found already stored is then referenced by nothing on disk yet (no
 * index written, not this process's memory), as in a backup between its reads and its commit.
 */
function startWriter(
  account: Account,
  repoDir: string,
  imageFile: string,
  opts: { pause: boolean },
): { said: (w: string) => Promise<void>; go: () => void; result: Promise<Record<string, unknown>> } {
  const script = `
    const { Repository, newPointId } = require(${JSON.stringify(MODULE)});
    const fs = require('fs');
    process.umask(0o002);
    const CS = ${CS};
    const line = () => new Promise((resolve) => process.stdin.once('data', resolve));
    const say = (v) => process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v)) + '\\n');
    (async () => {
      const repo = await Repository.open(${JSON.stringify(repoDir)}, { workers: 1 });
      try {
        const at = new Date();
        const w = await repo.beginPoint({ vm: ${JSON.stringify(vmO)}, pointId: newPointId(at), createdAt: at, parentPointId: null });
        const image = fs.readFileSync(${JSON.stringify(imageFile)});
        const dw = w.beginDisk({ device: 'vda', virtualSize: image.length });
        try {
          for (let i = 0; i < dw.count; i++) await dw.putChunk(i, Buffer.from(image.subarray(i * CS, i * CS + dw.chunkLength(i))));
        } catch (e) {
          await w.abort();
          say({ failed: e.code, message: e.message });
          return;
        }
        say('reused');
        if (${opts.pause}) await line();
        await dw.finish();
        const m = await w.commit({
          disks: [{ device: 'vda', node: 'n', format: 'raw', mode: 'full', reason: 'first-backup', bitmap: 'b', bitmapPersistent: false, bytesRead: image.length }],
          consistency: 'crash', vmDefinition: null,
        });
        say({ pointId: m.pointId, disk: m.disks[0] });
      } finally {
        await repo.close();
      }
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const child = spawnNodeAs(account, script);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const out = { text: '' };
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out.text += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`writer exited ${code}: ${err}`));
      const last = out.text.trim().split('\n').pop() as string;
      resolve(JSON.parse(last) as Record<string, unknown>);
    });
  });
  return { said: (w) => childSaid(child, out, w), go: () => child.stdin.end('go\n'), result };
}

/** Writers still running when a test ends (it failed) are stopped. */
const children = new Set<ReturnType<typeof spawnNodeAs>>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('a repository shared by two accounts: chunks of one account reused by the other', () => {
  const newRepo = scratchRepositories('olvm-owners-');
  let other: Account;

  beforeAll(() => {
    other = otherAccount();
  });

  /** Garbage of root: a deleted point of vm-g whose 5 chunks were written two hours ago. */
  async function rootGarbage(repo: Repository): Promise<Buffer> {
    const image = randomBytes(5 * CS);
    const g = await writePoint(repo, vmG, [{ device: 'vda', image }]);
    await repo.deletePoint(g.pointId, { reason: 'make garbage', actor: 'test' });
    await ageChunks(repo.dir, 2 * HOUR);
    return image;
  }

  test('gc (grace 0) between the reuse and the commit of a writer that may not touch the chunk files: the point stays whole', async () => {
    const repo = await newRepo();
    const garbage = await rootGarbage(repo);
    // the other account's image: four of root's old chunks, then one chunk of its own
    const image = Buffer.concat([garbage.subarray(0, 4 * CS), randomBytes(CS)]);
    const imageFile = path.join(path.dirname(repo.dir), 'other-image.raw');
    await fs.writeFile(imageFile, image, { mode: 0o644 });
    await shareWithGroup(repo.dir, other.gid);
    const before = await chunkFiles(repo.dir);
    for (const f of before) expect((await fs.stat(f)).uid).toBe(0);

    const writer = startWriter(other, repo.dir, imageFile, { pause: true });
    await writer.said('reused');
    // the collection of the service (here: root), with no grace, while the writer has not committed
    const gc = await repo.gc({ graceMs: 0 });
    writer.go();
    const r = (await writer.result) as { pointId: string; disk: { chunksNew: number; chunksReused: number } };

    // root's fifth chunk was garbage and went; the four the writer relies on stayed
    expect(gc).toMatchObject({ chunksRemoved: 1, liveWriters: 1 });
    expect(r.disk).toMatchObject({ chunksNew: 1, chunksReused: 4 });
    expect((await readImage(repo, r.pointId, 'vda')).equals(image)).toBe(true);
    const v = await repo.verify({ repair: false });
    expect([v.ok, v.problems]).toEqual([true, []]);
    const restored = await restoredBytes(repo, r.pointId, 'vda', path.join(path.dirname(repo.dir), 'restored.raw'));
    expect(restored.equals(image)).toBe(true);
    // the writer stored its own copy of what it could not refresh: the files are now its own
    const owners = await Promise.all((await chunkFiles(repo.dir)).map(async (f) => (await fs.stat(f)).uid));
    expect(owners).toEqual(owners.map(() => other.uid));
    // and a later collection, with the point committed, keeps all of them
    expect((await repo.gc({ graceMs: 0 })).chunksRemoved).toBe(0);
    expect((await readImage(repo, r.pointId, 'vda')).equals(image)).toBe(true);
  });

  test('a writer that can neither refresh nor replace such a chunk fails the point, naming the file and its owner', async () => {
    const repo = await newRepo();
    const garbage = await rootGarbage(repo);
    const imageFile = path.join(path.dirname(repo.dir), 'other-image-2.raw');
    await fs.writeFile(imageFile, garbage.subarray(0, CS), { mode: 0o644 });
    await shareWithGroup(repo.dir, other.gid);
    // the directory of root's first chunk is root's alone again
    const [first] = (await chunkFiles(repo.dir)).filter((f) => path.basename(f) === digestOf(garbage.subarray(0, CS)));
    await fs.chmod(path.dirname(first!), 0o755);

    const writer = startWriter(other, repo.dir, imageFile, { pause: false });
    const r = (await writer.result) as { failed?: string; message?: string };
    expect(r.failed).toBe('REPO_PERMISSION_DENIED');
    expect(r.message).toContain(first);
    expect(r.message).toMatch(/belongs to root \(uid 0\)/);
    // nothing was committed, root's chunk is as it was
    expect(await repo.listPoints({ vmKey: vmO.key })).toEqual([]);
    expect((await fs.stat(first!)).uid).toBe(0);
  });
});

function digestOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
