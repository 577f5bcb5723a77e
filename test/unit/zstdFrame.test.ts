import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { decompress } from 'zstd-napi';
import { getFrameContentSize } from 'zstd-napi/binding';
import { rawFrameSize, writeRawFrame } from '../../backend/src/repository/zstdFrame';
import { requireTools } from '../helpers/tools';

describe('raw zstd frames for incompressible chunks', () => {
  test.each([1, 4096, 128 * 1024, 128 * 1024 + 1, 1 << 20, (1 << 20) + 5, 4 << 20])('%d bytes decode with zstd-napi and the zstd CLI', (n) => {
    requireTools('zstd');
    const data = randomBytes(n);
    const out = Buffer.alloc(rawFrameSize(n));
    const len = writeRawFrame(data, out);
    expect(len).toBe(out.length);
    const frame = out.subarray(0, len);
    expect(getFrameContentSize(frame)).toBe(n);
    expect(decompress(frame).equals(data)).toBe(true);
    // an independent decoder: the reference implementation
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 16 << 20 }).equals(data)).toBe(true);
  });

  test('an output buffer that is too small is refused', () => {
    expect(() => writeRawFrame(Buffer.alloc(1000), Buffer.alloc(1000))).toThrow(RangeError);
  });
});

describe('the repository picks raw frames only for data that does not compress', () => {
  test('random chunk: raw frame; text-like chunk: compressed; both read back', async () => {
    const { promises: fs } = await import('fs');
    const os = await import('os');
    const path = await import('path');
    const { Repository, newPointId } = await import('../../backend/src/repository');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-zstd-'));
    const repo = await Repository.init(path.join(dir, 'repo'), { version: 1 }); // reads chunk files
    try {
      const random = randomBytes(1 << 20);
      const text = Buffer.alloc(1 << 20);
      for (let i = 0; i < text.length; i++) text[i] = 97 + ((i * 7) % 13) + (i % 1000 === 0 ? 1 : 0);
      // half random, half text: the middle sample compresses, so the chunk is compressed
      const mixed = Buffer.concat([randomBytes(1 << 19), text.subarray(0, 1 << 19)]);
      const w = await repo.beginPoint({ vm: { key: 'z', name: 'z' }, pointId: newPointId(), createdAt: new Date(), parentPointId: null });
      const sizes: number[] = [];
      for (const [i, data] of [random, text, mixed].entries()) {
        const d = w.beginDisk({ device: `d${i}`, virtualSize: 1 << 20 });
        await d.putChunk(0, Buffer.from(data));
        await d.finish();
        sizes.push(d.stats.bytesStored);
      }
      const m = await w.commit({
        disks: [0, 1, 2].map((i) => ({ device: `d${i}`, node: 'n', format: 'raw', mode: 'full' as const, reason: 'first-backup' as const, bitmap: 'b', bitmapPersistent: false, bytesRead: 1 << 20 })),
        consistency: 'crash',
        vmDefinition: null,
      });
      expect(sizes[0]).toBe(rawFrameSize(1 << 20));
      expect(sizes[1]).toBeLessThan(1 << 16);
      expect(sizes[2]).toBeLessThan((1 << 20) * 0.6);
      for (const [i, data] of [random, text, mixed].entries()) {
        const r = await repo.openPoint(m.pointId, { purpose: 'verify', holder: 'test' });
        try {
          expect((await r.readChunk((await r.index(`d${i}`)).digest(0), 1 << 20)).equals(data)).toBe(true);
        } finally {
          await r.release();
        }
      }
      expect((await repo.verify()).ok).toBe(true);
    } finally {
      await repo.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
