/**
 * `trash/<pointId>/` (FORMAT.md §13–§15): a deleted point kept on disk while something may still
 * use it — a running writer of its VM that may have read its index as the base of an
 * incremental, or a reader whose lease was taken before the deletion. Garbage collection marks
 * the chunks of every trash entry and removes an entry once nothing can use it any more; this
 * module says what keeps an entry and removes those nothing keeps.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { listPointIds } from './points';
import { LOCKS_DIR, MANIFEST_FILE, TRASH_DIR } from './layout';
import { liveLeases } from './leases';
import { liveVmLocks, type LiveVmLock } from './locks';
import type { Lease } from './types';

/** Written into `trash/<pointId>/` once the point has left points/ (FORMAT.md §13). */
export const TRASH_MARKER = 'deleted.json';

export interface TrashMarker {
  pointId: string;
  vmKey: string;
  /** After the rename out of points/: a writer whose lock started later cannot hold the point. */
  deletedAt: string;
  actor: string;
  reason: string;
}

/** Right after a deletion's rename: whether a writer of the VM runs, and who reads the point. */
export async function trashUsers(root: string, vmKey: string, pointId: string): Promise<{ writing: boolean; leases: Lease[] }> {
  // Checked after the rename: a writer that takes the VM's lock from now on cannot read the
  // point, nor can a reader that takes its lease from now on (it reads points/ only).
  const writing = (await liveVmLocks(path.join(root, LOCKS_DIR))).some((l) => l.vmKey === vmKey);
  return { writing, leases: await liveLeases(root, pointId) };
}

/**
 * Removes the trash entries no running writer and no reader can still be using: no live VM lock
 * of the point's VM that was taken at or before its deletion, no live read lease on it.
 */
export async function purgeTrash(root: string, dryRun: boolean): Promise<{ purged: string[]; kept: string[] }> {
  const purged: string[] = [];
  const kept: string[] = [];
  const ids = await listPointIds(path.join(root, TRASH_DIR));
  if (ids.length === 0) return { purged, kept };
  const live: LiveVmLock[] = await liveVmLocks(path.join(root, LOCKS_DIR));
  const leased = new Set((await liveLeases(root)).map((l) => l.pointId));
  for (const id of ids) {
    const dir = path.join(root, TRASH_DIR, id);
    const { vmKey, deletedAtMs } = await trashInfo(dir);
    const writing = live.some((l) => (vmKey === null || l.vmKey === vmKey) && l.startedAtMs <= deletedAtMs);
    if (writing || leased.has(id)) {
      kept.push(id);
      continue;
    }
    if (!dryRun) await fs.rm(dir, { recursive: true, force: true });
    purged.push(id);
  }
  return { purged, kept };
}

async function trashInfo(dir: string): Promise<{ vmKey: string | null; deletedAtMs: number }> {
  let deletedAtMs = Number.NaN;
  let vmKey: string | null = null;
  try {
    const marker = JSON.parse(await fs.readFile(path.join(dir, TRASH_MARKER), 'utf8')) as Partial<TrashMarker>;
    if (typeof marker.vmKey === 'string') vmKey = marker.vmKey;
    if (typeof marker.deletedAt === 'string') deletedAtMs = Date.parse(marker.deletedAt);
  } catch {
    // no marker (crash right after the rename): the manifest and the directory's ctime tell
  }
  if (vmKey === null) {
    try {
      const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as { vm?: { key?: unknown } };
      if (typeof m.vm?.key === 'string') vmKey = m.vm.key;
    } catch {
      // unknown VM: every live writer counts
    }
  }
  if (Number.isNaN(deletedAtMs)) {
    const st = await fs.stat(dir).catch(() => undefined);
    deletedAtMs = st ? st.ctimeMs : Date.now();
  }
  return { vmKey, deletedAtMs };
}
