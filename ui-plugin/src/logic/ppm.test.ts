// decodePpm: a QEMU PPM screenshot as pixels, and everything it must refuse.
import { decodePpm } from './ppm';

const bytes = (header: string, body: number[]): Uint8Array => new Uint8Array([...Buffer.from(header, 'latin1'), ...body]);

describe('decodePpm', () => {
  it('reads a P6 image (with a comment in its header) into RGBA pixels', () => {
    const img = decodePpm(bytes('P6\n# qemu\n2 1\n255\n', [1, 2, 3, 250, 251, 252]));
    expect(img && { width: img.width, height: img.height, rgba: [...img.rgba] }).toEqual({ width: 2, height: 1, rgba: [1, 2, 3, 255, 250, 251, 252, 255] });
  });

  it('refuses what it cannot draw: another format, 16-bit samples, missing pixels, absurd sizes', () => {
    expect(decodePpm(bytes('\x89PNG\r\n\x1a\n', [0, 0, 0]))).toBeNull();
    expect(decodePpm(bytes('P6 1 1 65535\n', [0, 0, 0, 0, 0, 0]))).toBeNull();
    expect(decodePpm(bytes('P6 2 2 255\n', [1, 2, 3]))).toBeNull();
    expect(decodePpm(bytes('P6 100000 100000 255\n', [1, 2, 3]))).toBeNull();
    expect(decodePpm(bytes('P3 1 1 255\n', [1, 2, 3]))).toBeNull();
  });
});
