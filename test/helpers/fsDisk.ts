/**
 * A disk with four filesystems for the file-level restore tests, built at test time from
 * Debian packages without root and without an appliance: a GPT table (sfdisk) and ext4
 * (mkfs.ext4 -d from a prepared folder: awkward names, symlinks in and out, a fifo), vfat
 * (mkfs.vfat + mcopy), xfs (mkfs.xfs -p protofile: a character device, a fifo; the 300 MB
 * minimum of mkfs.xfs is for production filesystems, the fstests variables lift it) and ntfs
 * (mkntfs + ntfscp), each made in its own file and copied into its partition. No LVM volume:
 * making one without root needs the appliance (another launch of ~25 s per test file).
 * A fifth partition holds an ext4 whose group descriptors were zeroed: it must not mount, and
 * say so. `files` lists every regular file with its bytes, for byte-exact comparisons.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';
import { requireTools } from './tools';

const MIB = 1 << 20;
/** Partitions: start MiB, size MiB, GPT type (sfdisk's shortcuts: L Linux, the Microsoft basic data GUID). */
const MS_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';
const LAYOUT = { ext4: [1, 16, 'L'], vfat: [17, 8, MS_DATA], xfs: [25, 16, 'L'], ntfs: [41, 8, MS_DATA], broken: [49, 4, 'L'] } as const;
export const FS_DISK_BYTES = 54 * MIB;

export interface FixtureFile {
  /** libguestfs' device of its filesystem (the disk is /dev/sda). */
  filesystem: string;
  /** Path bytes inside the filesystem. */
  path: Buffer;
  data: Buffer;
}

export interface FsDisk {
  image: string;
  files: FixtureFile[];
  /** A 2 MiB random file of ext4 that only the damaged-chunk test reads. */
  damaged: FixtureFile;
  /** The ext4 source folder (what a listing of /dev/sda1 must show). */
  ext4Source: string;
}

const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);

/** Builds the disk in `dir` (which the caller removes). */
export async function buildFsDisk(dir: string): Promise<FsDisk> {
  requireTools('sfdisk', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'mmd', 'mkfs.xfs', 'mkntfs', 'ntfscp');
  const files: FixtureFile[] = [];
  const add = (filesystem: string, p: string | Buffer, data: Buffer): FixtureFile => {
    const f = { filesystem, path: b(p), data };
    files.push(f);
    return f;
  };

  // ext4: a prepared folder copied in by mkfs.ext4 -d (names are bytes: Buffer paths)
  const src = path.join(dir, 'ext4-src');
  await fs.mkdir(path.join(src, 'docs', 'deeper'), { recursive: true });
  const put = async (rel: Buffer, data: Buffer): Promise<void> => {
    await fs.writeFile(Buffer.concat([b(`${src}/`), rel]), data);
    add('/dev/sda1', Buffer.concat([b('/'), rel]), data);
  };
  await put(b('docs/readme.txt'), b('the ext4 readme\n'));
  await put(b('docs/big.bin'), randomBytes(3 * MIB + 123));
  await put(b('docs/deeper/note.md'), b('# deep\n'));
  await put(b('name with spaces.txt'), b('spaces\n'));
  await put(b('new\nline.txt'), b('a newline in the name\n'));
  await put(Buffer.concat([b('bad'), Buffer.from([0xff, 0xfe]), b('utf8.txt')]), b('not utf-8\n'));
  await put(b('caf\u00e9.txt'), b('utf-8 name\n'));
  const damagedData = randomBytes(2 * MIB);
  await fs.writeFile(path.join(src, 'damaged.bin'), damagedData);
  const damaged = { filesystem: '/dev/sda1', path: b('/damaged.bin'), data: damagedData };
  await fs.symlink('/etc/passwd', path.join(src, 'docs', 'escape'));
  await fs.symlink('../../../etc', path.join(src, 'docs', 'up'));
  await fs.symlink('readme.txt', path.join(src, 'docs', 'inside'));
  await runTool('mkfifo', [path.join(src, 'fifo')]);
  const ext4 = path.join(dir, 'ext4.img');
  await runTool('mkfs.ext4', ['-q', '-F', '-L', 'EXT4DATA', '-d', src, ext4, `${LAYOUT.ext4[1]}M`], { timeoutMs: 60_000 });

  // vfat
  const vfat = path.join(dir, 'vfat.img');
  await runTool('mkfs.vfat', ['-C', '-n', 'FATDATA', vfat, String(LAYOUT.vfat[1] * 1024)]);
  const vfatText = path.join(dir, 'vfat.txt');
  await fs.writeFile(vfatText, 'vfat file\n');
  const inner = randomBytes(300 * 1024);
  await fs.writeFile(path.join(dir, 'inner.bin'), inner);
  await runTool('mmd', ['-i', vfat, '::/DIR']);
  await runTool('mcopy', ['-i', vfat, vfatText, '::/vfat.txt']);
  await runTool('mcopy', ['-i', vfat, path.join(dir, 'inner.bin'), '::/DIR/inner.bin']);
  add('/dev/sda2', '/vfat.txt', b('vfat file\n'));
  add('/dev/sda2', '/DIR/inner.bin', inner);

  // xfs from a protofile (names without blanks: the protofile splits on them)
  const xfsText = path.join(dir, 'xfs.txt');
  await fs.writeFile(xfsText, 'xfs file\n');
  const deep = randomBytes(700 * 1024);
  await fs.writeFile(path.join(dir, 'deep.bin'), deep);
  const proto = path.join(dir, 'xfs.proto');
  await fs.writeFile(
    proto,
    ['/dev/null', '0 0', 'd--755 0 0', `xfs.txt ---644 0 0 ${xfsText}`, 'sub d--755 0 0', `deep.bin ---600 0 0 ${path.join(dir, 'deep.bin')}`, '$', 'null c--666 0 0 1 3', 'pipe p--644 0 0', 'tolink l--777 0 0 xfs.txt', '$', ''].join('\n'),
  );
  const xfs = path.join(dir, 'xfs.img');
  await fs.writeFile(xfs, '');
  await fs.truncate(xfs, LAYOUT.xfs[1] * MIB);
  await runTool('env', ['TEST_DIR=/tmp', 'TEST_DEV=fixture', 'QA_CHECK_FS=1', 'mkfs.xfs', '-q', '-L', 'XFSDATA', '-p', proto, xfs], { timeoutMs: 60_000 });
  add('/dev/sda3', '/xfs.txt', b('xfs file\n'));
  add('/dev/sda3', '/sub/deep.bin', deep);

  // ntfs
  const ntfs = path.join(dir, 'ntfs.img');
  await fs.writeFile(ntfs, '');
  await fs.truncate(ntfs, LAYOUT.ntfs[1] * MIB);
  await runTool('mkntfs', ['-q', '-F', '-f', '-L', 'NTFSDATA', '-s', '512', '-p', '0', '-H', '0', '-S', '0', ntfs], { timeoutMs: 60_000 });
  const ntfsData = randomBytes(200 * 1024);
  await fs.writeFile(path.join(dir, 'ntfs.bin'), ntfsData);
  await runTool('ntfscp', ['-q', ntfs, path.join(dir, 'ntfs.bin'), 'ntfs file.bin']);
  add('/dev/sda4', '/ntfs file.bin', ntfsData);

  // a corrupt ext4: 1 KiB blocks, its group descriptor table (block 2) zeroed
  const broken = path.join(dir, 'broken.img');
  await runTool('mkfs.ext4', ['-q', '-F', '-b', '1024', '-L', 'BROKEN', broken, `${LAYOUT.broken[1]}M`], { timeoutMs: 60_000 });
  const bh = await fs.open(broken, 'r+');
  try {
    await bh.write(Buffer.alloc(1024), 0, 1024, 2048);
  } finally {
    await bh.close();
  }

  // the disk: GPT with the five partitions, each filesystem copied to its place
  const image = path.join(dir, 'disk.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, FS_DISK_BYTES);
  const table = Object.values(LAYOUT).map(([start, size, type]) => `start=${start * 2048}, size=${size * 2048}, type=${type}`).join('\n');
  await sfdisk(image, `label: gpt\n${table}\n`);
  const fh = await fs.open(image, 'r+');
  try {
    for (const [file, start] of [[ext4, LAYOUT.ext4[0]], [vfat, LAYOUT.vfat[0]], [xfs, LAYOUT.xfs[0]], [ntfs, LAYOUT.ntfs[0]], [broken, LAYOUT.broken[0]]] as const) {
      const data = await fs.readFile(file);
      await fh.write(data, 0, data.length, start * MIB);
    }
  } finally {
    await fh.close();
  }
  return { image, files, damaged, ext4Source: src };
}

async function sfdisk(image: string, script: string): Promise<void> {
  const { spawn } = await import('child_process');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sfdisk', ['-q', image], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`sfdisk failed: ${err}`));
    });
    child.stdin.end(script);
  });
}
