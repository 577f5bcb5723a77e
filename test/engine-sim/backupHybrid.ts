import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { QmpClient } from '../../backend/src/qmp';
import { sleep } from '../../backend/src/util/abort';
import { runTool } from '../../backend/src/util/exec';
import { imageBitmaps, startCold, stopCold, type ColdHandle } from './backupCold';
import { formatNode, liveBitmaps, type BitmapPlan, type DiskExport } from './backupLive';

/**
 * A hybrid (snapshot-based) backup, HybridBackupCommand's way (reference §4.4, cluster >= 4.7):
 * a snapshot "Auto-generated for Backup VM" puts a qcow2 overlay over each disk (the new active
 * volume, holding the new checkpoint's bitmap); the transfers read the volume below it, frozen
 * at the snapshot (live: an export of that node on QEMU's NBD server with the merged temporary
 * bitmap; down: qemu-nbd on it); finalize removes the snapshot: the checkpoint bitmap and the
 * writes since are merged down into the base volume, then the overlay is committed into it
 * (live: active block-commit and pivot; down: qemu-img commit).
 */

/** One disk under the snapshot: its base volume (what the disk record pointed to) and the overlay. */
export interface HybridDisk {
  diskId: string;
  baseFile: string;
  baseImageId: string;
  baseFormat: 'qcow2' | 'raw';
  overlayFile: string;
  overlayImageId: string;
  /** live only: QEMU node names */
  baseNode?: string;
  overlayNode?: string;
}

export interface HybridHandle {
  disks: HybridDisk[];
  live?: { socket: string; exports: Array<{ id: string; node: string; tmp?: string }> };
  cold?: ColdHandle;
}

type Exec = (name: string, args: Record<string, unknown>) => Promise<unknown>;
const exec = (q: QmpClient): Exec => q.execute.bind(q) as unknown as Exec;

/** The overlay volume, next to the base in the disk's image directory (a file domain's layout). */
async function createOverlay(d: { file: string; format: 'qcow2' | 'raw' }): Promise<{ file: string; imageId: string }> {
  const imageId = randomUUID();
  const file = path.join(path.dirname(d.file), imageId);
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1', '-b', path.basename(d.file), '-F', d.format, file]);
  return { file, imageId };
}

export async function startHybridLive(
  q: QmpClient,
  p: { backupId: string; vmId: string; runDir: string; plans: BitmapPlan[]; disks: Array<{ diskId: string; file: string; imageId: string; format: 'qcow2' | 'raw' }> },
): Promise<{ handle: HybridHandle; exports: DiskExport[] }> {
  const tag = p.backupId.slice(0, 8);
  const socket = path.join(p.runDir, `nbd-${p.vmId.slice(0, 8)}.sock`);
  const handle: HybridHandle = { disks: [], live: { socket, exports: [] } };
  const actions: Array<Record<string, unknown>> = [];
  for (const [i, d] of p.disks.entries()) {
    const plan = p.plans[i];
    const baseNode = await formatNode(q, d.diskId);
    const ov = await createOverlay(d);
    const overlayNode = `ov${tag}-${i}`;
    handle.disks.push({ diskId: d.diskId, baseFile: d.file, baseImageId: d.imageId, baseFormat: d.format, overlayFile: ov.file, overlayImageId: ov.imageId, baseNode, overlayNode });
    await q.execute('blockdev-add', { driver: 'qcow2', 'node-name': overlayNode, file: { driver: 'file', filename: ov.file }, backing: null });
    const tmp = plan?.mergeFrom ? `backup-${tag}-${i}` : undefined;
    if (tmp && plan?.mergeFrom) {
      actions.push({ type: 'block-dirty-bitmap-add', data: { node: baseNode, name: tmp, disabled: true } });
      actions.push({ type: 'block-dirty-bitmap-merge', data: { node: baseNode, target: tmp, bitmaps: plan.mergeFrom } });
    }
    if (plan?.addCheckpoint) actions.push({ type: 'block-dirty-bitmap-add', data: { node: overlayNode, name: plan.addCheckpoint, persistent: true } });
    actions.push({ type: 'blockdev-snapshot', data: { node: baseNode, overlay: overlayNode } });
    handle.live?.exports.push({ id: `exp${tag}-${i}`, node: baseNode, tmp });
  }
  await exec(q)('transaction', { actions });
  await fs.rm(socket, { force: true });
  await q.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
  const exports: DiskExport[] = [];
  for (const [i, e] of (handle.live?.exports ?? []).entries()) {
    const diskId = p.disks[i]?.diskId ?? '';
    await q.execute('block-export-add', { type: 'nbd', id: e.id, 'node-name': e.node, name: diskId, bitmaps: e.tmp ? [{ node: e.node, name: e.tmp }] : undefined });
    exports.push({ diskId, socket, exportName: diskId, dirtyContext: e.tmp ? `qemu:dirty-bitmap:${e.tmp}` : undefined });
  }
  return { handle, exports };
}

/** Snapshot removal on the running VM: the exports go, the overlay is committed and pivoted away. */
export async function stopHybridLive(q: QmpClient, h: HybridHandle, checkpointIds: string[]): Promise<void> {
  const x = exec(q);
  for (const e of h.live?.exports ?? []) await x('block-export-del', { id: e.id, mode: 'hard' }).catch(() => undefined);
  await x('nbd-server-stop', {}).catch(() => undefined);
  for (const e of h.live?.exports ?? []) if (e.tmp) await x('block-dirty-bitmap-remove', { node: e.node, name: e.tmp }).catch(() => undefined);
  for (const [i, d] of h.disks.entries()) {
    const { baseNode, overlayNode } = d;
    if (!baseNode || !overlayNode) continue;
    const job = `commit-${i}-${path.basename(d.overlayFile).slice(0, 8)}`;
    await x('block-commit', { 'job-id': job, device: overlayNode, 'base-node': baseNode });
    await jobStatus(q, job, (s) => s === 'ready');
    // the base is writable now: the checkpoint bitmaps there take the overlay's writes
    const overlayMaps = await liveBitmaps(q, overlayNode);
    const baseMaps = await liveBitmaps(q, baseNode);
    for (const name of overlayMaps.filter((n) => checkpointIds.includes(n))) {
      if (!baseMaps.includes(name)) await x('block-dirty-bitmap-add', { node: baseNode, name, persistent: true });
      for (const target of [name, ...baseMaps.filter((n) => checkpointIds.includes(n) && n !== name)]) await x('block-dirty-bitmap-merge', { node: baseNode, target, bitmaps: [{ node: overlayNode, name }] });
    }
    await x('job-complete', { id: job });
    await jobStatus(q, job, (s) => s === 'gone');
    await x('blockdev-del', { 'node-name': overlayNode });
    await fs.rm(d.overlayFile, { force: true });
  }
  if (h.live) await fs.rm(h.live.socket, { force: true });
}

async function jobStatus(q: QmpClient, id: string, done: (status: string) => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const job = (await q.execute('query-jobs', {})).find((j) => j.id === id);
    if (job?.error) throw new Error(`job ${id}: ${job.error}`);
    if (done(job?.status ?? 'gone')) return;
    if (Date.now() > end) throw new Error(`job ${id} stuck in ${job?.status ?? 'gone'}`);
    await sleep(25);
  }
}

export async function startHybridCold(p: {
  backupId: string;
  runDir: string;
  plans: BitmapPlan[];
  disks: Array<{ diskId: string; file: string; imageId: string; format: 'qcow2' | 'raw' }>;
}): Promise<{ handle: HybridHandle; exports: DiskExport[] }> {
  const handle: HybridHandle = { disks: [] };
  for (const [i, d] of p.disks.entries()) {
    const ov = await createOverlay(d);
    handle.disks.push({ diskId: d.diskId, baseFile: d.file, baseImageId: d.imageId, baseFormat: d.format, overlayFile: ov.file, overlayImageId: ov.imageId });
    const cp = p.plans[i]?.addCheckpoint;
    if (cp) await runTool('qemu-img', ['bitmap', '--add', '-f', 'qcow2', ov.file, cp]);
  }
  // the base volumes are what the snapshot froze: read them as a cold backup reads a volume
  const cold = await startCold({ backupId: p.backupId, runDir: p.runDir, disks: p.disks.map((d, i) => ({ diskId: d.diskId, file: d.file, format: d.format, mergeFrom: p.plans[i]?.mergeFrom })) });
  handle.cold = cold.handle;
  return { handle, exports: cold.exports };
}

export async function stopHybridCold(h: HybridHandle, checkpointIds: string[]): Promise<void> {
  if (h.cold) await stopCold(h.cold);
  for (const d of h.disks) {
    if (d.baseFormat === 'qcow2') {
      const base = await imageBitmaps(d.baseFile, 'qcow2');
      for (const name of (await imageBitmaps(d.overlayFile, 'qcow2')).filter((n) => checkpointIds.includes(n))) {
        if (!base.includes(name)) await runTool('qemu-img', ['bitmap', '--add', '-f', 'qcow2', d.baseFile, name]);
        for (const target of [name, ...base.filter((n) => checkpointIds.includes(n) && n !== name)]) {
          await runTool('qemu-img', ['bitmap', '--merge', name, '-b', d.overlayFile, '-F', 'qcow2', '-f', 'qcow2', d.baseFile, target]);
        }
      }
    }
    await runTool('qemu-img', ['commit', '-q', '-f', 'qcow2', d.overlayFile]);
    await fs.rm(d.overlayFile, { force: true });
  }
}
