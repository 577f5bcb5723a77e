import { spawn, type ChildProcess } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';
import { waitForSockets } from '../helpers/waitForSockets';
import type { BitmapPlan, DiskExport } from './backupLive';

/**
 * A cold VM backup (VM down), as the engine runs it with vdsm's volume bitmap verbs: the new
 * checkpoint's bitmap added to each qcow2 volume (`qemu-img bitmap --add`, the engine's
 * adding_bitmaps phase), for incremental disks a disabled temporary bitmap merged from the
 * checkpoint bitmaps, and the data served read-only by qemu-nbd on the image with that bitmap
 * (`--bitmap`, meta context `qemu:dirty-bitmap:<name>`). No scratch disks: nothing writes.
 */

export interface ColdHandle {
  disks: Array<{ diskId: string; file: string; format: 'qcow2' | 'raw'; tmpBitmap?: string; proc?: ChildProcess; socket: string }>;
}

/** Names of the persistent bitmaps stored in a qcow2 image (none for raw). */
export async function imageBitmaps(file: string, format: 'qcow2' | 'raw'): Promise<string[]> {
  if (format !== 'qcow2') return [];
  const info = JSON.parse(await runTool('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', file])) as { 'format-specific'?: { data?: { bitmaps?: Array<{ name: string }> } } };
  return (info['format-specific']?.data?.bitmaps ?? []).map((b) => b.name);
}

export async function removeImageBitmap(file: string, name: string): Promise<void> {
  await runTool('qemu-img', ['bitmap', '--remove', '-f', 'qcow2', file, name]);
}

export async function startCold(p: { backupId: string; runDir: string; disks: Array<BitmapPlan & { file: string; format: 'qcow2' | 'raw' }> }): Promise<{ handle: ColdHandle; exports: DiskExport[] }> {
  const tag = p.backupId.slice(0, 8);
  const handle: ColdHandle = { disks: [] };
  const exports: DiskExport[] = [];
  try {
    for (const [i, d] of p.disks.entries()) {
      const socket = path.join(p.runDir, `cold-${tag}-${i}.sock`);
      const entry: ColdHandle['disks'][number] = { diskId: d.diskId, file: d.file, format: d.format, socket };
      handle.disks.push(entry);
      if (d.addCheckpoint) await runTool('qemu-img', ['bitmap', '--add', '-f', 'qcow2', d.file, d.addCheckpoint]);
      if (d.mergeFrom) {
        entry.tmpBitmap = `backup-${tag}-${i}`;
        await runTool('qemu-img', ['bitmap', '--add', '--disable', ...d.mergeFrom.flatMap((b) => ['--merge', b]), '-f', 'qcow2', d.file, entry.tmpBitmap]);
      }
      await fs.rm(socket, { force: true });
      const args = ['--socket', socket, '--format', d.format, '--export-name', d.diskId, '--read-only', '--persistent', '--shared', '8', '--cache', 'writeback', '--aio', 'threads'];
      if (entry.tmpBitmap) args.push('--bitmap', entry.tmpBitmap);
      const proc = spawn('qemu-nbd', [...args, d.file], { stdio: ['ignore', 'ignore', 'pipe'] });
      entry.proc = proc;
      let stderr = '';
      proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      await waitForSockets([socket], () => (proc.exitCode !== null ? `qemu-nbd: ${stderr.trim()}` : undefined), 10_000);
      exports.push({ diskId: d.diskId, socket, exportName: d.diskId, dirtyContext: entry.tmpBitmap ? `qemu:dirty-bitmap:${entry.tmpBitmap}` : undefined });
    }
    return { handle, exports };
  } catch (err) {
    await stopCold(handle, { removeCheckpoint: p.disks.map((d) => d.addCheckpoint).find((x) => x !== undefined) }).catch(() => undefined);
    throw err;
  }
}

/** qemu-nbd ends, the temporary bitmaps go; the checkpoint bitmap stays unless the backup never got going. */
export async function stopCold(h: ColdHandle, o: { removeCheckpoint?: string } = {}): Promise<void> {
  const errors: string[] = [];
  for (const d of h.disks) {
    const proc = d.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const force = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(force);
    }
    await fs.rm(d.socket, { force: true });
    const names = [d.tmpBitmap, o.removeCheckpoint].filter((x): x is string => x !== undefined);
    if (d.format !== 'qcow2') continue;
    const present = await imageBitmaps(d.file, d.format).catch((): string[] => []);
    for (const n of names.filter((x) => present.includes(x))) {
      await removeImageBitmap(d.file, n).catch((err: Error) => errors.push(`${d.diskId}: ${err.message}`));
    }
  }
  if (errors.length > 0) throw new Error(`cold backup teardown: ${errors.join('; ')}`);
}
