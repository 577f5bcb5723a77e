/**
 * A binary PPM (P6, 8 bits per sample) as RGBA pixels, for the boot check's screenshot when QEMU
 * wrote PPM: browsers do not show PPM in an <img>, so the plugin draws it on a canvas. Pure.
 */
export interface Pixels {
  width: number;
  height: number;
  /** RGBA, row by row (what ImageData takes). */
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

/** The largest screen decoded (a QEMU console is far smaller). */
const MAX_PIXELS = 16 * 1024 * 1024;

/** null when `b` is not a P6 PPM of 8-bit samples with all its pixels. */
export function decodePpm(b: Uint8Array): Pixels | null {
  // header: "P6", width, height, maxval, each after whitespace (comments: '#' to the end of line)
  const fields: string[] = [];
  let i = 0;
  while (fields.length < 4 && i < b.length && i < 1024) {
    const c = b[i]!;
    if (c === 0x23) {
      while (i < b.length && b[i] !== 0x0a) i++;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
    } else {
      let s = '';
      while (i < b.length && ![0x20, 0x09, 0x0a, 0x0d].includes(b[i]!)) s += String.fromCharCode(b[i++]!);
      fields.push(s);
    }
  }
  // exactly one whitespace byte ends the header
  i++;
  const [magic, w, h, max] = fields;
  const width = Number(w);
  const height = Number(h);
  if (magic !== 'P6' || max !== '255' || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > MAX_PIXELS) return null;
  if (b.length - i < width * height * 3) return null;
  const rgba = new Uint8ClampedArray(new ArrayBuffer(width * height * 4));
  for (let p = 0, q = i; p < rgba.length; p += 4, q += 3) {
    rgba[p] = b[q]!;
    rgba[p + 1] = b[q + 1]!;
    rgba[p + 2] = b[q + 2]!;
    rgba[p + 3] = 255;
  }
  return { width, height, rgba };
}
