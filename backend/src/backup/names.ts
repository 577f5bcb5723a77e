/**
 * Our bitmaps carry our own prefix so we never touch another product's bitmaps (the engine's
 * checkpoints, libvirt's).
 *
 * - The chain bitmap `olvm-backup-<pointId>` is created by a full backup (named after that
 *   point) and records every write from then on; each incremental clears it in the same
 *   transaction that freezes a copy of it. Its name, recorded in every manifest of the chain,
 *   ties QEMU's state to the repository's.
 * - The frozen copy `olvm-backup-frozen-<pointId>` lives only while that point is being taken.
 *   It is persistent when the chain bitmap is: if our process dies and QEMU later shuts down
 *   cleanly, the copy is stored with the image and the next run merges it back (no write lost).
 */
export const BITMAP_PREFIX = 'olvm-backup-';
const FROZEN_PREFIX = `${BITMAP_PREFIX}frozen-`;

export function chainBitmapName(pointId: string): string {
  return `${BITMAP_PREFIX}${pointId}`;
}

export function frozenBitmapName(pointId: string): string {
  return `${FROZEN_PREFIX}${pointId}`;
}

export function isOurBitmap(name: string): boolean {
  return name.startsWith(BITMAP_PREFIX);
}

export function isFrozenBitmap(name: string): boolean {
  return name.startsWith(FROZEN_PREFIX);
}

/** Prefixes of what a run creates in QEMU, so a later run can find a dead run's leftovers. */
export const RUN_PREFIXES = { fleeceNode: 'olvm-fleece-', job: 'olvm-job-', export: 'olvm-export-' } as const;

/** Node, job and export ids for one disk of one backup run; short, unique per run. */
export function runIds(runTag: string, diskIndex: number): { fleeceNode: string; jobId: string; exportId: string } {
  return {
    fleeceNode: `${RUN_PREFIXES.fleeceNode}${runTag}-${diskIndex}`,
    jobId: `${RUN_PREFIXES.job}${runTag}-${diskIndex}`,
    exportId: `${RUN_PREFIXES.export}${runTag}-${diskIndex}`,
  };
}
