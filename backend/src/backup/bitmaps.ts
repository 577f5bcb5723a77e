import { AppError, describeError } from '../errors';
import type { BlockAction, BlockApi, BlockDevice } from '../qmp';
import type { DiskPlan } from './chainCheck';
import { chainBitmapName, frozenBitmapName, isFrozenBitmap, isOurBitmap } from './names';

/** What one disk's bitmaps look like for one backup run. */
export interface BitmapRun {
  node: string;
  /** the chain bitmap that records changes after this point */
  chain: string;
  /** incremental only: the frozen copy exported as this point's dirty map */
  frozen: string | undefined;
  persistent: boolean;
  mode: 'full' | 'incremental';
}

export function bitmapRun(device: BlockDevice, plan: DiskPlan, pointId: string, persistent: boolean): BitmapRun {
  if (plan.mode === 'incremental') {
    return { node: device.nodeName, chain: plan.previous.bitmap, frozen: frozenBitmapName(pointId), persistent: plan.bitmap.persistent, mode: 'incremental' };
  }
  return { node: device.nodeName, chain: chainBitmapName(pointId), frozen: undefined, persistent, mode: 'full' };
}

/**
 * The bitmap half of the backup transaction. Full: a new chain bitmap starts recording.
 * Incremental: a disabled copy of the chain bitmap is taken and the chain bitmap cleared, at
 * the same instant the fleecing job freezes the disk.
 */
export function transactionActions(b: BitmapRun): BlockAction[] {
  if (b.mode === 'full') return [{ kind: 'bitmapAdd', node: b.node, name: b.chain, persistent: b.persistent }];
  const frozen = b.frozen as string;
  return [
    { kind: 'bitmapAdd', node: b.node, name: frozen, persistent: b.persistent, disabled: true },
    { kind: 'bitmapMerge', node: b.node, target: frozen, sources: [b.chain] },
    { kind: 'bitmapClear', node: b.node, name: b.chain },
  ];
}

/** After a failure past the transaction: give the chain bitmap its bits back. A failed full
 *  drops the chain it started (the previous chain, if any, was never touched). */
export function rollbackActions(b: BitmapRun): BlockAction[] {
  if (b.mode === 'full') return [{ kind: 'bitmapRemove', node: b.node, name: b.chain }];
  const frozen = b.frozen as string;
  return [
    { kind: 'bitmapMerge', node: b.node, target: b.chain, sources: [frozen] },
    { kind: 'bitmapRemove', node: b.node, name: frozen },
  ];
}

/**
 * Frozen copies left by a run that died before cleaning up (our process killed; QEMU kept
 * running or shut down cleanly) still hold changes that may not be in any point: merge them
 * back into every usable chain bitmap of ours on that node, then drop them. Returns notes.
 */
export async function recoverFrozen(api: BlockApi, devices: BlockDevice[]): Promise<string[]> {
  const notes: string[] = [];
  for (const d of devices) {
    const frozen = d.bitmaps.filter((b) => isFrozenBitmap(b.name));
    if (frozen.length === 0) continue;
    const chains = d.bitmaps.filter((b) => isOurBitmap(b.name) && !isFrozenBitmap(b.name) && !b.inconsistent && !b.busy);
    const usable = frozen.filter((f) => !f.inconsistent && !f.busy);
    const actions: BlockAction[] = [];
    for (const c of chains) {
      if (usable.length > 0) actions.push({ kind: 'bitmapMerge', node: d.nodeName, target: c.name, sources: usable.map((f) => f.name) });
    }
    for (const f of frozen.filter((x) => !x.busy)) actions.push({ kind: 'bitmapRemove', node: d.nodeName, name: f.name });
    if (actions.length === 0) continue;
    try {
      await api.transaction(actions);
      notes.push(`disk ${d.deviceId}: merged ${usable.length} bitmap(s) left by an interrupted backup back into its chain`);
    } catch (err) {
      throw new AppError('BACKUP_FAILED', `recovering bitmaps left by an interrupted backup on disk ${d.deviceId} failed`, { cause: err });
    }
  }
  return notes;
}

/** Once the point is committed: every bitmap of ours on the node but the live chain one goes. */
export async function dropStale(api: BlockApi, runs: Array<{ device: string; bitmaps: BitmapRun }>): Promise<string[]> {
  const warnings: string[] = [];
  for (const r of runs) {
    try {
      for (const b of await api.bitmaps(r.bitmaps.node)) {
        if (isOurBitmap(b.name) && b.name !== r.bitmaps.chain) await api.bitmapRemove(r.bitmaps.node, b.name);
      }
    } catch (err) {
      warnings.push(`removing old bitmaps of disk ${r.device} failed: ${describeError(err)}`);
    }
  }
  return warnings;
}
