import type { Extent } from '../nbd';
import { NBD_STATE_DIRTY, NBD_STATE_ZERO } from '../nbd';

export interface ChunkWork {
  index: number;
  offset: number;
  length: number;
  /** 'zero': every byte of the chunk reads as zero (no need to read it) */
  action: 'read' | 'zero';
}

/**
 * Which chunks of a disk must be (re)written into the new point, from NBD extents:
 * full → every chunk; incremental → only chunks that overlap a dirty extent. A chunk whose
 * whole range `base:allocation` flags as zero becomes a zero chunk without a read: that is
 * how discards and zero-writes reach the backup without moving data.
 */
export function planChunks(p: { size: number; chunkSize: number; allocation: Extent[]; dirty?: Extent[] }): ChunkWork[] {
  const count = Math.ceil(p.size / p.chunkSize);
  const wanted = p.dirty ? chunksTouched(p.dirty, p.chunkSize, count) : undefined;
  const nonZero = chunksTouched(
    p.allocation.filter((e) => (e.flags & NBD_STATE_ZERO) === 0).map((e) => ({ ...e, flags: NBD_STATE_DIRTY })),
    p.chunkSize,
    count,
  );
  const out: ChunkWork[] = [];
  const push = (i: number): void => {
    const offset = i * p.chunkSize;
    out.push({ index: i, offset, length: Math.min(p.chunkSize, p.size - offset), action: nonZero.has(i) ? 'read' : 'zero' });
  };
  if (wanted) {
    for (const i of [...wanted].sort((a, b) => a - b)) push(i);
  } else {
    for (let i = 0; i < count; i++) push(i);
  }
  return out;
}

function chunksTouched(extents: Extent[], chunkSize: number, count: number): Set<number> {
  const set = new Set<number>();
  for (const e of extents) {
    if ((e.flags & NBD_STATE_DIRTY) === 0 || e.length <= 0) continue;
    const first = Math.floor(e.offset / chunkSize);
    const last = Math.min(count - 1, Math.floor((e.offset + e.length - 1) / chunkSize));
    for (let i = first; i <= last; i++) set.add(i);
  }
  return set;
}
