import { promises as fs } from 'fs';
import * as path from 'path';
import type { QmpClient } from '../../backend/src/qmp';
import { runTool } from '../../backend/src/util/exec';
import { sleep } from '../../backend/src/util/abort';

/**
 * A live VM backup on the VM's QEMU, as libvirt runs one for vdsm in pull mode
 * (reference/qemu-bitmaps.md §4A, §7): per disk a qcow2 scratch overlay whose backing is the
 * disk's format node, one transaction that adds the new checkpoint's persistent bitmap, builds
 * the temporary "since checkpoint" bitmap (merge of the checkpoint bitmaps) and starts a
 * `blockdev-backup sync=none` into the scratch node (fleecing: the export stays frozen at the
 * backup instant), then QEMU's NBD server on a unix socket with one export per disk.
 */

export interface BitmapPlan {
  diskId: string;
  /** the new checkpoint's bitmap, on disks that take part in the checkpoint */
  addCheckpoint?: string;
  /** incremental disks: the checkpoint bitmaps merged into the temporary one */
  mergeFrom?: string[];
}

/** One disk's export: where an NBD client reads it, and the dirty-bitmap meta context if any. */
export interface DiskExport {
  diskId: string;
  socket: string;
  exportName: string;
  dirtyContext?: string;
}

/** What teardown needs back. */
export interface LiveHandle {
  socket: string;
  disks: Array<{ node: string; fleece: string; job: string; exportId: string; tmpBitmap?: string; scratch: string }>;
}

/** The format node under the device `ua-<disk id>` (what libvirt calls libvirt-N-format). */
export async function formatNode(q: QmpClient, diskId: string): Promise<string> {
  const blocks = await q.execute('query-block', {});
  const b = blocks.find((x) => x.qdev === `/machine/peripheral/ua-${diskId}/virtio-backend`);
  const node = b?.inserted?.['node-name'];
  if (!node) throw new Error(`disk ${diskId} is not plugged into the VM's QEMU`);
  return node;
}

/** Names of the dirty bitmaps on a node. */
export async function liveBitmaps(q: QmpClient, node: string): Promise<string[]> {
  const nodes = await q.execute('query-named-block-nodes', { flat: true });
  return (nodes.find((n) => n['node-name'] === node)?.['dirty-bitmaps'] ?? []).map((b) => b.name ?? '').filter((n) => n !== '');
}

export async function startLive(q: QmpClient, p: { backupId: string; vmId: string; runDir: string; disks: BitmapPlan[]; sizes: Map<string, number> }): Promise<{ handle: LiveHandle; exports: DiskExport[] }> {
  const tag = p.backupId.slice(0, 8);
  const scratchDir = path.join(p.runDir, 'scratch');
  await fs.mkdir(scratchDir, { recursive: true });
  const socket = path.join(p.runDir, `nbd-${p.vmId.slice(0, 8)}.sock`);
  const handle: LiveHandle = { socket, disks: [] };
  const exports: DiskExport[] = [];
  try {
    const actions: Array<Record<string, unknown>> = [];
    for (const [i, d] of p.disks.entries()) {
      const node = await formatNode(q, d.diskId);
      const scratch = path.join(scratchDir, `${tag}-${d.diskId.slice(0, 8)}.qcow2`);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', scratch, String(p.sizes.get(d.diskId) ?? 0)]);
      const fleece = `bk${tag}-${i}`;
      const entry = { node, fleece, job: `job${tag}-${i}`, exportId: `exp${tag}-${i}`, scratch, tmpBitmap: d.mergeFrom ? `backup-${tag}-${i}` : undefined };
      handle.disks.push(entry);
      await q.execute('blockdev-add', { driver: 'qcow2', 'node-name': fleece, file: { driver: 'file', filename: scratch }, backing: node });
      if (d.addCheckpoint) actions.push({ type: 'block-dirty-bitmap-add', data: { node, name: d.addCheckpoint, persistent: true } });
      if (entry.tmpBitmap && d.mergeFrom) {
        actions.push({ type: 'block-dirty-bitmap-add', data: { node, name: entry.tmpBitmap, disabled: true } });
        actions.push({ type: 'block-dirty-bitmap-merge', data: { node, target: entry.tmpBitmap, bitmaps: d.mergeFrom } });
      }
      actions.push({ type: 'blockdev-backup', data: { 'job-id': entry.job, device: node, target: fleece, sync: 'none' } });
    }
    await q.execute('transaction', { actions: actions as never });
    await fs.rm(socket, { force: true });
    await q.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
    for (const [i, e] of handle.disks.entries()) {
      const d = p.disks[i];
      if (!d) continue;
      await q.execute('block-export-add', { type: 'nbd', id: e.exportId, 'node-name': e.fleece, name: d.diskId, bitmaps: e.tmpBitmap ? [{ node: e.node, name: e.tmpBitmap }] : undefined });
      exports.push({ diskId: d.diskId, socket, exportName: d.diskId, dirtyContext: e.tmpBitmap ? `qemu:dirty-bitmap:${e.tmpBitmap}` : undefined });
    }
    return { handle, exports };
  } catch (err) {
    await stopLive(q, handle, { removeCheckpoint: p.disks.map((d) => d.addCheckpoint).find((x) => x !== undefined) }).catch(() => undefined);
    throw err;
  }
}

/**
 * Exports, jobs, scratch nodes and temporary bitmaps go; the checkpoint bitmap stays recording
 * (or goes too when the backup failed before it was taken: `removeCheckpoint`). Each step is
 * tried so a half-built backup is torn down as far as it got.
 */
export async function stopLive(q: QmpClient, h: LiveHandle, o: { removeCheckpoint?: string } = {}): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      if (!/not found|does not exist|No such|not running|could not be found|is not running/i.test((err as Error).message)) errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  if (!q.closed) {
    for (const d of h.disks) await attempt('block-export-del', () => q.execute('block-export-del', { id: d.exportId, mode: 'hard' }));
    await waitUntil(async () => (await q.execute('query-block-exports', {})).every((e) => !h.disks.some((d) => d.exportId === e.id)), 10_000).catch(() => undefined);
    await attempt('nbd-server-stop', () => q.execute('nbd-server-stop', {}));
    for (const d of h.disks) await attempt('job-cancel', () => q.execute('job-cancel', { id: d.job }));
    await waitUntil(async () => (await q.execute('query-jobs', {})).every((j) => !h.disks.some((d) => d.job === j.id)), 10_000).catch((e: Error) => errors.push(e.message));
    for (const d of h.disks) {
      await attempt('blockdev-del', () => q.execute('blockdev-del', { 'node-name': d.fleece }));
      const tmp = d.tmpBitmap;
      if (tmp) await attempt('bitmap remove', () => q.execute('block-dirty-bitmap-remove', { node: d.node, name: tmp }));
      const cp = o.removeCheckpoint;
      if (cp) await attempt('bitmap remove', () => q.execute('block-dirty-bitmap-remove', { node: d.node, name: cp }));
    }
  }
  for (const d of h.disks) await fs.rm(d.scratch, { force: true });
  await fs.rm(h.socket, { force: true });
  if (errors.length > 0) throw new Error(`live backup teardown: ${errors.join('; ')}`);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(25);
  }
}
