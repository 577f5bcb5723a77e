/**
 * A tiny bootable disk built at test time from Debian packages (never a downloaded image): an
 * MBR partition table (syslinux's mbr.bin, one active FAT16 partition at 1 MiB) holding the
 * kernel of linux-image-amd64 and an initramfs of busybox-static whose /init mounts /proc and
 * prints BOOT_MARKER on the serial console, then idles; syslinux boots it with
 * `console=ttyS0 quiet`. Built without root (mkfs.vfat --offset, mtools, syslinux --offset) and
 * once per test file, in a temporary directory its afterAll removes (disposeBootableDisk; the
 * process's exit removes it too, where the test runner lets that event through).
 */
import { rmSync } from 'fs';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';
import { requireTools } from './tools';

export const BOOT_MARKER = 'OLVM-BOOT-OK';
export const BOOTABLE_DISK_BYTES = 32 << 20;
const PART_START_SECTOR = 2048;
const MBR_BIN = '/usr/lib/syslinux/mbr/mbr.bin';
const BUSYBOX = '/bin/busybox';

let built: Promise<string> | undefined;
let builtDir: string | undefined;

/** Path of the raw bootable image (build it on first call); do not modify it: copy it. */
export function bootableDisk(): Promise<string> {
  built ??= build();
  return built;
}

/** Removes the built image (the next bootableDisk() builds it again). */
export async function disposeBootableDisk(): Promise<void> {
  const dir = builtDir;
  built = undefined;
  builtDir = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}

async function kernel(): Promise<string> {
  const names = (await fs.readdir('/boot')).filter((n) => n.startsWith('vmlinuz-')).sort();
  const last = names[names.length - 1];
  if (!last) throw new Error('no kernel in /boot (apt-get install linux-image-amd64)');
  return path.join('/boot', last);
}

async function build(): Promise<string> {
  requireTools('mkfs.vfat', 'mcopy', 'syslinux', 'sfdisk', 'cpio', 'gzip');
  for (const f of [MBR_BIN, BUSYBOX]) await fs.access(f).catch(() => Promise.reject(new Error(`${f} is missing (apt-get install syslinux-common busybox-static)`)));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bootable-'));
  builtDir = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  // the initramfs: busybox and /init (the kernel's built-in initramfs already has /dev/console)
  const root = path.join(dir, 'root');
  for (const d of ['bin', 'proc', 'dev']) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
  await fs.writeFile(
    path.join(root, 'init'),
    ['#!/bin/busybox sh', '/bin/busybox mount -t proc proc /proc', `echo ${BOOT_MARKER}`, 'while :; do /bin/busybox sleep 3600; done', ''].join('\n'),
    { mode: 0o755 },
  );
  const initrd = path.join(dir, 'initrd.gz');
  await runTool('sh', ['-c', `cd "$1" && find . | cpio -o -H newc --quiet | gzip -9 > "$2"`, 'sh', root, initrd], { timeoutMs: 60_000 });
  const cfg = path.join(dir, 'syslinux.cfg');
  await fs.writeFile(cfg, ['DEFAULT linux', 'PROMPT 0', 'TIMEOUT 0', 'LABEL linux', '  KERNEL vmlinuz', '  APPEND initrd=initrd.gz console=ttyS0 quiet', ''].join('\n'));
  // the disk: partition table, FAT at 1 MiB, files, syslinux, MBR boot code
  const img = path.join(dir, 'bootable.raw');
  await fs.writeFile(img, Buffer.alloc(0));
  await fs.truncate(img, BOOTABLE_DISK_BYTES);
  await runTool('sh', ['-c', `printf 'start=${PART_START_SECTOR}, type=6, bootable\\n' | sfdisk -q "$1"`, 'sh', img], { timeoutMs: 30_000 });
  const partKiB = (BOOTABLE_DISK_BYTES - PART_START_SECTOR * 512) / 1024;
  await runTool('mkfs.vfat', [`--offset=${PART_START_SECTOR}`, '-n', 'OLVMBOOT', img, String(partKiB)], { timeoutMs: 30_000 });
  const at = `${img}@@${PART_START_SECTOR * 512}`;
  await runTool('mcopy', ['-i', at, await kernel(), '::/vmlinuz'], { timeoutMs: 30_000 });
  await runTool('mcopy', ['-i', at, initrd, '::/initrd.gz'], { timeoutMs: 30_000 });
  await runTool('mcopy', ['-i', at, cfg, '::/syslinux.cfg'], { timeoutMs: 30_000 });
  await runTool('syslinux', ['--offset', String(PART_START_SECTOR * 512), '--install', img], { timeoutMs: 30_000 });
  const mbr = await fs.readFile(MBR_BIN);
  const fh = await fs.open(img, 'r+');
  try {
    // 440 bytes: the boot code, not the disk signature or the partition table after it
    await fh.write(mbr.subarray(0, 440), 0, 440, 0);
  } finally {
    await fh.close();
  }
  return img;
}
