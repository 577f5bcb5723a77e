/**
 * File-level restore against a real libguestfs appliance under TCG (one launch for the
 * session tests): a point of the four-filesystem fixture (test/helpers/fsDisk.ts) browsed over
 * our NBD export — listings with awkward names, find, files and a folder's .tar.gz byte-exact
 * with the sources, the refusals, a damaged chunk answered clearly while the session goes on;
 * then `olvm-backup files get` and `olvm-backup mount` (guestmount, unmounted on SIGTERM).
 */
import { spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Readable } from 'stream';
import type { Manifest, Repository } from '../../backend/src/repository';
import { BrowseSession, parseDisplayName } from '../../backend/src/restore';
import { Fish } from '../../backend/src/restore/fileBrowseFish';
import { runTool } from '../../backend/src/util/exec';
import { CLI_MAIN, runCli } from '../helpers/cli';
import { writeImagePoint } from '../helpers/exportFixture';
import { buildFsDisk, type FsDisk } from '../helpers/fsDisk';
import { initRepo, V2 } from '../helpers/repoFormats';
import { requireTools } from '../helpers/tools';
import { until } from '../helpers/until';
import { blobLocation, flipByte } from './packFixture';

requireTools('guestfish', 'guestmount', 'qemu-system-x86_64');
jest.setTimeout(600_000);

let tmp: string;
let repo: Repository;
let disk: FsDisk;
let point: Manifest;
let session: BrowseSession;
let launchMs = 0;

async function bytesOf(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The names of the ext4 filesystem's root: its source folder and lost+found, sorted as bytes. */
async function ext4Names(): Promise<Buffer[]> {
  const names = await fs.readdir(disk.ext4Source, { encoding: 'buffer' });
  return [...names, Buffer.from('lost+found')].sort((a, b) => Buffer.compare(a, b));
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-filebrowse-test-'));
  disk = await buildFsDisk(tmp);
  const image = await fs.readFile(disk.image);
  repo = await initRepo(path.join(tmp, 'repo'), V2);
  point = await writeImagePoint(repo, image);
  // damage one chunk wholly inside damaged.bin (which no other test reads, so no cache holds it)
  const cs = repo.chunkSize;
  const at = image.indexOf(disk.damaged.data.subarray(1 << 20, (1 << 20) + 64));
  expect(at).toBeGreaterThan(0);
  const chunk = Math.floor(at / cs) + 1;
  expect(image.subarray(chunk * cs, (chunk + 1) * cs).equals(disk.damaged.data.subarray(chunk * cs - at + (1 << 20), chunk * cs - at + (1 << 20) + cs))).toBe(true);
  const loc = await blobLocation(repo.dir, (await repo.readIndex(point.pointId, 'vda')).digestHex(chunk));
  await flipByte(loc.file, loc.offset + Math.floor(loc.storedLength / 2));
  const t0 = Date.now();
  session = await BrowseSession.open({ repository: repo, pointId: point.pointId, actor: 'test', accel: 'tcg', workDir: tmp });
  launchMs = Date.now() - t0;
  process.stderr.write(`file browse: session open in ${launchMs} ms (${JSON.stringify(session.layout.timings)})\n`);
});

afterAll(async () => {
  await session?.close();
  await repo?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('a browse session', () => {
  test('finds the four filesystems, mounted, and the corrupt one with the reason, under a browse lease', async () => {
    const fss = session.layout.filesystems.map((f) => [f.device, f.type, f.label, f.mounted]);
    expect(fss).toEqual([
      ['/dev/sda1', 'ext4', 'EXT4DATA', true],
      ['/dev/sda2', 'vfat', 'FATDATA', true],
      ['/dev/sda3', 'xfs', 'XFSDATA', true],
      ['/dev/sda4', 'ntfs', 'NTFSDATA', true],
      ['/dev/sda5', 'ext4', 'BROKEN', false],
    ]);
    expect(session.layout.filesystems[4]?.error).toMatch(/^it does not mount: mount_options: /);
    await expect(session.list({ filesystem: '/dev/sda5', path: Buffer.from('/') })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringMatching(/\/dev\/sda5 \(ext4, not mounted\)/) });
    expect(session.layout.partitions).toEqual(['/dev/sda1', '/dev/sda2', '/dev/sda3', '/dev/sda4', '/dev/sda5']);
    expect((await repo.leases(point.pointId)).map((l) => l.purpose)).toEqual(['browse']);
  });

  test('lists folders with raw names, types, sizes and symlink targets', async () => {
    const root = await session.list({ filesystem: '/dev/sda1', path: Buffer.from('/') });
    const names = root.entries.map((e) => Buffer.from(e.nameB64, 'base64'));
    const want = await ext4Names();
    expect(names).toEqual(want);
    const byName = new Map(root.entries.map((e) => [e.name, e]));
    expect(byName.get('new\\nline.txt')).toMatchObject({ type: 'file', size: 22, nameB64: Buffer.from('new\nline.txt').toString('base64') });
    expect(byName.get('bad\\xff\\xfeutf8.txt')).toMatchObject({ type: 'file', size: 10 });
    expect(byName.get('café.txt')).toMatchObject({ type: 'file' });
    expect(byName.get('fifo')).toMatchObject({ type: 'fifo' });
    expect(byName.get('docs')).toMatchObject({ type: 'directory', mode: 0o755 });
    const docs = await session.list({ filesystem: '/dev/sda1', path: Buffer.from('docs') });
    const targets = Object.fromEntries(docs.entries.filter((e) => e.type === 'symlink').map((e) => [e.name, e.target]));
    expect(targets).toEqual({ escape: '/etc/passwd', inside: 'readme.txt', up: '../../../etc' });
    const xfs = await session.list({ filesystem: '/dev/sda3', path: Buffer.from('/') });
    expect(xfs.entries.map((e) => [e.name, e.type])).toEqual([['null', 'char-device'], ['pipe', 'fifo'], ['sub', 'directory'], ['tolink', 'symlink'], ['xfs.txt', 'file']]);
    const ntfs = await session.list({ filesystem: '/dev/sda4', path: Buffer.from('/') });
    expect(ntfs.entries.map((e) => e.name)).toContain('ntfs file.bin');
  });

  test('reads every fixture file byte-exact, from each filesystem, and follows a symlink inside its filesystem', async () => {
    for (const f of disk.files) {
      const { stat, stream } = await session.read({ filesystem: f.filesystem, path: f.path });
      expect(stat.size).toBe(f.data.length);
      const got = await bytesOf(stream);
      expect({ file: `${f.filesystem}:${f.path.toString('latin1')}`, same: got.equals(f.data) }).toEqual({ file: `${f.filesystem}:${f.path.toString('latin1')}`, same: true });
    }
    const inside = await session.read({ filesystem: '/dev/sda1', path: parseDisplayName('/docs/inside') });
    expect((await bytesOf(inside.stream)).toString()).toBe('the ext4 readme\n');
  });

  test('finds names by glob across the filesystems, bounded', async () => {
    const t0 = Date.now();
    const r = await session.find('*.txt');
    process.stderr.write(`file browse: find *.txt over 4 filesystems in ${Date.now() - t0} ms\n`);
    const found = r.results.map((e) => `${e.filesystem}:${e.path}`).sort();
    expect(found).toEqual(
      ['/dev/sda1:/bad\\xff\\xfeutf8.txt', '/dev/sda1:/café.txt', '/dev/sda1:/docs/readme.txt', '/dev/sda1:/name with spaces.txt', '/dev/sda1:/new\\nline.txt', '/dev/sda2:/vfat.txt', '/dev/sda3:/xfs.txt'].sort(),
    );
    expect(r.truncated).toBe(false);
    const limited = await session.find('*', { limit: 3 });
    expect(limited.results).toHaveLength(3);
    expect(limited.truncated).toBe(true);
    const deep = await session.find('docs/**/*.md', { filesystem: '/dev/sda1' });
    expect(deep.results.map((e) => e.path)).toEqual(['/docs/deeper/note.md']);
  });

  test('a folder as .tar.gz holds the same bytes and links', async () => {
    const t0 = Date.now();
    const tgz = await bytesOf(await session.archive({ filesystem: '/dev/sda1', path: Buffer.from('/docs') }));
    process.stderr.write(`file browse: tar.gz of /docs (${tgz.length} bytes) in ${Date.now() - t0} ms\n`);
    const out = path.join(tmp, 'untar');
    await fs.mkdir(out);
    await fs.writeFile(path.join(tmp, 'docs.tgz'), tgz);
    await runTool('tar', ['-xzf', path.join(tmp, 'docs.tgz'), '-C', out]);
    for (const f of disk.files.filter((x) => x.filesystem === '/dev/sda1' && x.path.toString().startsWith('/docs/'))) {
      expect((await fs.readFile(path.join(out, f.path.toString().slice('/docs/'.length)))).equals(f.data)).toBe(true);
    }
    expect(await fs.readlink(path.join(out, 'escape'))).toBe('/etc/passwd');
  });

  test('refuses .., symlinks out of the filesystem, devices and fifos; a missing name is not found', async () => {
    const at = (fsName: string, p: string): { filesystem: string; path: Buffer } => ({ filesystem: fsName, path: parseDisplayName(p) });
    await expect(session.read(at('/dev/sda1', '/docs/../../etc/passwd'))).rejects.toMatchObject({ code: 'FILE_REFUSED', message: expect.stringMatching(/'\.\.'/) });
    await expect(session.read(at('/dev/sda1', '/docs/escape'))).rejects.toMatchObject({ code: 'FILE_REFUSED', message: expect.stringMatching(/leads out of filesystem/) });
    await expect(session.list(at('/dev/sda1', '/docs/up'))).rejects.toMatchObject({ code: 'FILE_REFUSED' });
    await expect(session.read(at('/dev/sda1', '/docs/up/passwd'))).rejects.toMatchObject({ code: 'FILE_REFUSED' });
    await expect(session.read(at('/dev/sda1', '/fifo'))).rejects.toMatchObject({ code: 'FILE_REFUSED', message: expect.stringMatching(/is a fifo/) });
    await expect(session.read(at('/dev/sda3', '/null'))).rejects.toMatchObject({ code: 'FILE_REFUSED', message: expect.stringMatching(/char-device/) });
    await expect(session.read(at('/dev/sda1', '/nope.txt'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(session.read(at('/dev/sdz9', '/x'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringMatching(/no mounted filesystem/) });
    expect(session.usable).toBe(true);
  });

  test('a reader that goes away half-way leaves the session usable (the rest is drained)', async () => {
    const big = disk.files.find((f) => f.path.toString() === '/docs/big.bin');
    const r = await session.read({ filesystem: '/dev/sda1', path: big!.path });
    await new Promise<void>((resolve) =>
      r.stream.once('data', () => {
        r.stream.destroy();
        resolve();
      }),
    );
    const again = await session.read({ filesystem: '/dev/sda2', path: Buffer.from('/vfat.txt') });
    expect((await bytesOf(again.stream)).toString()).toBe('vfat file\n');
    expect(session.usable).toBe(true);
  });

  test('a file over a damaged chunk is FILE_UNREADABLE and the session answers the next request', async () => {
    const r = await session.read({ filesystem: disk.damaged.filesystem, path: disk.damaged.path });
    const err = await bytesOf(r.stream).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(err).toMatchObject({ code: 'FILE_UNREADABLE', message: expect.stringMatching(/^reading \/dev\/sda1:\/damaged\.bin: the point's data there cannot be read/) });
    expect(session.usable).toBe(true);
    const f = disk.files.find((x) => x.filesystem === '/dev/sda3' && x.path.toString() === '/sub/deep.bin');
    const again = await session.read({ filesystem: f!.filesystem, path: f!.path });
    expect((await bytesOf(again.stream)).equals(f!.data)).toBe(true);
  });

  test('no transfer fifo stays open or on disk after reads that ended, failed or were dropped', async () => {
    const links = await Promise.all((await fs.readdir('/proc/self/fd')).map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    expect(links.filter((l) => l.includes('/xfer-'))).toEqual([]);
    const dir = (await fs.readdir(tmp)).find((n) => n.startsWith('olvm-browse-'));
    expect((await fs.readdir(path.join(tmp, dir!))).filter((n) => n.startsWith('xfer-'))).toEqual([]);
  });
});

describe('guestfish commands (no appliance)', () => {
  test('a transfer times out after a stretch without progress, however long it runs', async () => {
    const fishTmp = await fs.mkdtemp(path.join(tmp, 'fish-'));
    const fish = await Fish.start({ accel: 'tcg', tmpDir: fishTmp });
    try {
      // 3 s in all, progress every 300 ms: an idle timeout of 1.5 s does not end it
      const kicks = setInterval(() => fish.activity(), 300);
      const r = await fish.run('!sleep 3', 1500, { idle: true }).finally(() => clearInterval(kicks));
      expect(r.error).toBeUndefined();
      // no progress: it ends after 1.5 s, the process killed
      const t0 = Date.now();
      await expect(fish.run('!sleep 5', 1500, { idle: true })).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringMatching(/made no progress on '!sleep' for 2 s/) });
      expect(Date.now() - t0).toBeLessThan(10_000);
      await until('guestfish killed', () => Promise.resolve(fish.alive ? undefined : true), 10_000);
    } finally {
      await fish.close();
    }
  });
});

describe('the cli', () => {
  test('files get takes an escaped name and writes the file byte-exact', async () => {
    const out = path.join(tmp, 'got.bin');
    const r = await runCli(['files', 'get', '--repo', repo.dir, '--point', point.pointId, '--fs', '/dev/sda1', '--accel', 'tcg', 'new\\nline.txt', '--out', out], 300_000);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect((await fs.readFile(out)).toString()).toBe('a newline in the name\n');
    expect(await repo.leases(point.pointId)).toHaveLength(1);
  });

  test('mount shows the same files through guestmount and unmounts on SIGTERM', async () => {
    const dir = path.join(tmp, 'mnt');
    await fs.mkdir(dir);
    const child = spawn(process.execPath, [CLI_MAIN, 'mount', '--repo', repo.dir, '--point', point.pointId, '--disk', 'vda', '--fs', '/dev/sda1', '--accel', 'tcg', '--json', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until('the mount to appear', () => Promise.resolve(stdout.includes('"dir"') || child.exitCode !== null ? true : undefined), 300_000);
      expect(stderr).toBe('');
      const names = (await fs.readdir(dir, { encoding: 'buffer' })).sort((a, b) => Buffer.compare(a, b));
      expect(names).toEqual(await ext4Names());
      expect((await fs.readFile(path.join(dir, 'docs', 'big.bin'))).equals(disk.files.find((f) => f.path.toString() === '/docs/big.bin')!.data)).toBe(true);
      await expect(fs.writeFile(path.join(dir, 'new.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect((await fs.readFile('/proc/self/mountinfo', 'utf8')).includes(` ${dir} `)).toBe(false);
    expect(await fs.readdir(dir)).toEqual([]);
    expect(await repo.leases(point.pointId)).toHaveLength(1);
  });
});
