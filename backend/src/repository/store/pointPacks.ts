/**
 * Which packs a point's blobs are in (FORMAT.md §24): the Object Lock retention of a locked point
 * in a remote repository covers its manifest, its disk indexes and every pack holding a chunk or
 * an index tree node it refers to — every known copy, since a reader may read any.
 */
import { DIGEST_LENGTH, ZERO_DIGEST } from '../digest';
import type { DiskIndex } from '../diskIndex';
import type { PackStore } from '../packStore';
import type { Manifest } from '../types';

/** The packs holding any of `ids` (32-byte latin1 keys). */
export function packsOfIds(store: PackStore, ids: ReadonlySet<string>): Set<string> {
  const packs = new Set<string>();
  for (const k of ids) for (const l of store.index.find(Buffer.from(k, 'latin1'))) packs.add(l.pack);
  return packs;
}

/** Every blob id of a disk index (chunks and tree nodes), as 32-byte latin1 keys. */
export function indexIds(index: DiskIndex, add: (key: string) => void): void {
  const each = (buf: Buffer): void => {
    for (let off = 0; off + DIGEST_LENGTH <= buf.length; off += DIGEST_LENGTH) {
      if (buf.compare(ZERO_DIGEST, 0, DIGEST_LENGTH, off, off + DIGEST_LENGTH) === 0) continue;
      add(buf.toString('latin1', off, off + DIGEST_LENGTH));
    }
  };
  each(index.copyDigests());
  for (const level of index.tree ?? []) each(level);
}

/** The packs of a committed point, its disk indexes read through `readIndex`. */
export async function pointPacks(store: PackStore, m: Manifest, readIndex: (m: Manifest, device: string) => Promise<DiskIndex>): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const d of m.disks) indexIds(await readIndex(m, d.device), (k) => void ids.add(k));
  return packsOfIds(store, ids);
}
