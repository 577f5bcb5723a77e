import * as path from 'path';
import { AppError } from '../errors';
import type { HostLink } from '../hosts';
import { BlockJob, overlayFileNode, type BlockApi } from '../qmp';
import { recoverFrozen } from './bitmaps';
import { RUN_PREFIXES } from './names';

/**
 * A backup process that died mid-run (killed, host rebooted, lost its connection) leaves QEMU
 * serving its views: an export, a fleecing job, a scratch node, the NBD server, a frozen
 * bitmap. The next run for the VM (it holds the VM's repository lock, so no run of ours is
 * live) removes what carries our names and merges the frozen bits back. Nothing that is not
 * ours is touched. Returns what it did, for the run's warnings.
 */
export async function recoverInterruptedRun(api: BlockApi, host: HostLink): Promise<string[]> {
  const notes: string[] = [];
  const exports = (await api.exportIds()).filter((id) => id.startsWith(RUN_PREFIXES.export));
  for (const id of exports) await api.exportDel(id, { hard: true });
  const jobs = (await api.jobIds()).filter((id) => id.startsWith(RUN_PREFIXES.job));
  for (const id of jobs) {
    const job = BlockJob.watch(api.session, id);
    try {
      await job.cancel({ timeoutMs: 30_000 });
    } finally {
      job.dispose();
    }
  }
  const all = await api.nodes();
  const byName = new Map(all.map((n) => [n.nodeName, n]));
  const nodes = all.filter((n) => n.nodeName.startsWith(RUN_PREFIXES.fleeceNode) && byName.has(overlayFileNode(n.nodeName)));
  for (const n of nodes) {
    const file = byName.get(overlayFileNode(n.nodeName))?.filename as string;
    await api.deleteNode(n.nodeName); // takes its file node with it
    // the scratch file sits alone in its run's private directory
    await host.removeFile(file);
    await host.removeDir(path.dirname(file)).catch(() => undefined);
  }
  if (exports.length + jobs.length + nodes.length > 0) {
    notes.push(`removed what an interrupted backup left in qemu: ${exports.length} export(s), ${jobs.length} job(s), ${nodes.length} scratch node(s)`);
  }
  try {
    notes.push(...(await recoverFrozen(api, await api.listDevices())));
  } catch (err) {
    throw new AppError('BACKUP_FAILED', 'cannot recover the state an interrupted backup left in qemu', { cause: err });
  }
  return notes;
}
