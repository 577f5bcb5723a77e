import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, type VmIdentity } from '../../backend/src/repository';
import { restoredBytes } from '../helpers/backupFixture';
import { CLI_MAIN, runCli, type CliRun } from '../helpers/cli';
import { childSaid, otherAccount, runAs, shareWithGroup, spawnNodeAs, type Account } from '../helpers/otherAccount';
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

describe('the command line in a repository that belongs to another account', () => {
  let base: string;
  let other: Account;
  let rootRepo: string;
  let otherRepo: string;
  const asOther = (...args: string[]): Promise<CliRun> => runAs(other, [process.execPath, CLI_MAIN, ...args]);
  const asRoot = (...args: string[]): Promise<CliRun> => runCli(args);

  beforeAll(async () => {
    other = otherAccount();
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-cli-owner-'));
    await fs.chmod(base, 0o755);
    rootRepo = path.join(base, 'root-repo');
    expect((await asRoot('repo', 'init', '--repo', rootRepo, '--chunk-size', '256K')).code).toBe(0);
    // the service account's repository, made by that account in a directory of its own
    const otherDir = path.join(base, 'svc');
    await fs.mkdir(otherDir);
    await fs.chown(otherDir, other.uid, other.gid);
    otherRepo = path.join(otherDir, 'repo');
    const init = await asOther('repo', 'init', '--repo', otherRepo, '--chunk-size', '256K');
    expect([init.code, init.stderr]).toEqual([0, '']);
  });
  afterAll(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  /** The one-line refusal: who owns it, who runs, and the command to run instead. */
  function expectRefused(r: CliRun, owner: string, ownerUid: number, me: string, cmd: string): void {
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^olvm-backup: repository \\S+ belongs to ${owner} \\(uid ${ownerUid}\\) and this command runs as ${me}: `));
    expect(lines[0]).toContain(`Run it as the owner: sudo -u ${owner} olvm-backup ${cmd}`);
    expect(lines[0]).toContain('--allow-other-owner');
  }

  test("every command that writes refuses another account's repository; reading commands work", async () => {
    const point = '20260101T000000Z-abcdefabcdef';
    const writing: string[][] = [
      ['backup', '--repo', rootRepo, '--qmp', '/nonexistent.qmp', '--vm', 'x'],
      ['prune', '--repo', rootRepo, '--keep-last', '1'],
      ['gc', '--repo', rootRepo, '--grace', '0'],
      ['verify', '--repo', rootRepo],
      ['points', 'delete', '--repo', rootRepo, '--point', point, '--reason', 'r'],
      ['points', 'lock', '--repo', rootRepo, '--point', point, '--until', '2099-01-01'],
      ['points', 'unlock', '--repo', rootRepo, '--point', point, '--reason', 'r'],
    ];
    for (const args of writing) expectRefused(await asOther(...args), 'root', 0, `${other.user} \\(uid ${other.uid}\\)`, args.join(' '));
    // what only reads (or writes only its read leases) is not refused
    for (const args of [['points', '--repo', rootRepo], ['prune', '--repo', rootRepo, '--keep-last', '1', '--dry-run'], ['audit', '--repo', rootRepo]]) {
      const r = await asOther(...args);
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 0, '']);
    }
    // and vice versa: root in the service account's repository
    expectRefused(await asRoot('gc', '--repo', otherRepo, '--grace', '0'), other.user, other.uid, 'root \\(uid 0\\)', `gc --repo ${otherRepo} --grace 0`);
    expectRefused(await asRoot('prune', '--repo', otherRepo, '--keep-daily', '7', '--reason', "it's late"), other.user, other.uid, 'root \\(uid 0\\)', `prune --repo ${otherRepo} --keep-daily 7 --reason 'it'\\''s late'`);
    // unless the operator means it
    const forced = await asRoot('gc', '--repo', otherRepo, '--grace', '0', '--allow-other-owner', '--json');
    expect([forced.code, forced.stderr]).toEqual([0, '']);
    expect((await asRoot('gc', '--help')).stdout).toContain('--allow-other-owner');
  });

  test("repo init into an existing directory of another account is refused; root's read leases never take leases/ from the owner", async () => {
    const theirs = path.join(base, 'svc', 'empty');
    await fs.mkdir(theirs);
    await fs.chown(theirs, other.uid, other.gid);
    const r = await asRoot('repo', 'init', '--repo', theirs);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^olvm-backup: directory ${theirs} belongs to ${other.user} \\(uid ${other.uid}\\) .*sudo -u ${other.user} olvm-backup repo init --repo ${theirs}`));
    expect(await fs.readdir(theirs)).toEqual([]);
    expect((await asRoot('repo', 'init', '--repo', theirs, '--allow-other-owner')).code).toBe(0);

    // a point of the service account, in a repository made before leases/ existed
    const image = randomBytes(2 * CS);
    const imageFile = path.join(base, 'svc-image.raw');
    await fs.writeFile(imageFile, image, { mode: 0o644 });
    const written = (await startWriter(other, otherRepo, imageFile, { pause: false }).result) as { pointId: string };
    await fs.rmdir(path.join(otherRepo, 'leases'));
    // root restores from it (a reading command: allowed); the leases/ it makes is the owner's
    const out = path.join(base, 'restored.raw');
    const restore = await asRoot('restore', '--repo', otherRepo, '--point', written.pointId, '--disk', 'vda', '--out', out);
    expect([restore.code, restore.stderr]).toEqual([0, '']);
    expect((await fs.readFile(out)).equals(image)).toBe(true);
    expect((await fs.stat(path.join(otherRepo, 'leases'))).uid).toBe(other.uid);
    // so the service account can still take leases there
    const verify = await asOther('verify', '--repo', otherRepo, '--json');
    expect([verify.code, JSON.parse(verify.stdout)]).toEqual([0, expect.objectContaining({ ok: true, pointsChecked: 1 })]);
  });
});
