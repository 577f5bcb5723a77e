import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';
import type { DiskFormat } from './state';

/** Disk image files on the simulated file storage domains: qemu-img / qemu-io, offline. */

export const qemuFormat = (f: DiskFormat): 'qcow2' | 'raw' => (f === 'cow' ? 'qcow2' : 'raw');

export async function createImage(file: string, format: DiskFormat, size: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const opts = format === 'cow' ? ['-o', 'compat=1.1'] : [];
  await runTool('qemu-img', ['create', '-q', '-f', qemuFormat(format), ...opts, file, String(size)]);
}

/** Writes random data at `offsets` (each `len` bytes) into a disk no process has open. */
export async function seedImage(file: string, format: DiskFormat, writes: Array<{ offset: number; length: number }>, scratchDir: string): Promise<void> {
  const tmp: string[] = [];
  const args = ['-f', qemuFormat(format)];
  try {
    for (const w of writes) {
      const f = path.join(scratchDir, `seed-${randomBytes(6).toString('hex')}.bin`);
      await fs.writeFile(f, randomBytes(w.length));
      tmp.push(f);
      args.push('-c', `write -s ${f} ${w.offset} ${w.length}`);
    }
    args.push(file);
    const out = await runTool('qemu-io', args);
    if (/fail|error/i.test(out)) throw new Error(`qemu-io seeding ${file} failed: ${out.trim()}`);
  } finally {
    for (const f of tmp) await fs.rm(f, { force: true });
  }
}

/**
 * The guest-visible content, converted to raw. `-U` (force share): the image may be open in a
 * running QEMU (the caller flushes it first) or in a transfer's qemu-nbd.
 */
export async function readImage(file: string, format: DiskFormat, scratchDir: string): Promise<Buffer> {
  const out = path.join(scratchDir, `read-${randomBytes(6).toString('hex')}.raw`);
  try {
    await runTool('qemu-img', ['convert', '-U', '-f', qemuFormat(format), '-O', 'raw', file, out]);
    return await fs.readFile(out);
  } finally {
    await fs.rm(out, { force: true });
  }
}

/** Allocated bytes on the host (the disk's actual_size). */
export async function allocatedSize(file: string): Promise<number> {
  try {
    const st = await fs.stat(file);
    return st.blocks * 512;
  } catch {
    return 0;
  }
}
