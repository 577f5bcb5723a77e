import type { Extent } from './types';

/**
 * Decodes the descriptors of one NBD_REPLY_TYPE_BLOCK_STATUS payload (context id at 0, then
 * length/flags pairs) into extents starting at `offset`, clipped to end before `end`.
 * Zero-length descriptors carry no information and are dropped.
 */
export function decodeBlockStatus(payload: Buffer, offset: number, end: number): Extent[] {
  const out: Extent[] = [];
  let pos = offset;
  for (let i = 4; i + 8 <= payload.length && pos < end; i += 8) {
    const length = Math.min(payload.readUInt32BE(i), end - pos);
    if (length === 0) continue;
    out.push({ offset: pos, length, flags: payload.readUInt32BE(i + 4) });
    pos += length;
  }
  return out;
}

/**
 * Appends `next` to `into`, extending the last extent instead when it ends where `next` starts
 * and has the same flags. Servers split runs at request boundaries and internal limits, which
 * carry no meaning for callers.
 */
export function appendMerged(into: Extent[], next: Extent): void {
  const last = into[into.length - 1];
  if (last && last.flags === next.flags && last.offset + last.length === next.offset) {
    last.length += next.length;
  } else {
    into.push({ offset: next.offset, length: next.length, flags: next.flags });
  }
}

/** Sum of lengths, e.g. to check that a map covers a range. */
export function totalLength(extents: readonly Extent[]): number {
  let n = 0;
  for (const e of extents) n += e.length;
  return n;
}
