/** Granularity at which restored data is checked for zeros: zero runs this size and aligned
 *  stay holes in the output (the qcow2 cluster size, and a multiple of every fs block size). */
export const HOLE_GRANULARITY = 64 * 1024;

/** Non-zero [start, end) byte ranges of `data`, at HOLE_GRANULARITY, adjacent ones merged. */
export function dataRanges(data: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let off = 0; off < data.length; off += HOLE_GRANULARITY) {
    const end = Math.min(off + HOLE_GRANULARITY, data.length);
    if (isZero(data, off, end)) continue;
    const last = out[out.length - 1];
    if (last && last[1] === off) last[1] = end;
    else out.push([off, end]);
  }
  return out;
}

const ZEROS = Buffer.alloc(HOLE_GRANULARITY);

function isZero(data: Buffer, start: number, end: number): boolean {
  return data.compare(ZEROS, 0, end - start, start, end) === 0;
}
