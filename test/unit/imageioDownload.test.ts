import { randomBytes } from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { ImageioSource, IMAGEIO_DIRTY_CONTEXT } from '../../backend/src/backup/imageioSource';
import { ImageioClient } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';
import { NBD_STATE_DIRTY, NBD_STATE_ZERO } from '../../backend/src/nbd';

const TICKET = '0d5c9e4a-3b1f-4f7e-9a52-6f0c1d2e3b4a';
const MiB = 1 << 20;

/**
 * The download side of the imageio client and the imageio DiskSource against a small HTTP
 * server answering as ovirt-imageio does (reference §6): OPTIONS, extents of both contexts,
 * ranged GET into the caller's buffer, and the failures a copy must report in imageio's words:
 * a range cut short, an error status, a hang.
 */
describe('imageio downloads', () => {
  let server: http.Server;
  let base: string;
  const image = randomBytes(4 * MiB);
  let mode: 'ok' | 'truncate' | '500' | '416' | 'hang' = 'ok';
  let options = 0;
  let reading = 0;
  let mostReading = 0;
  let delayMs = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'OPTIONS') {
        options++;
        res.setHeader('Allow', 'OPTIONS,GET');
        res.end(JSON.stringify({ features: ['extents'], max_readers: 3, max_writers: 0 }));
        return;
      }
      if (url.pathname.endsWith('/extents')) {
        const ctx = url.searchParams.get('context');
        if (ctx === 'dirty') {
          res.end(JSON.stringify([
            { start: 0, length: MiB, dirty: false, zero: false },
            { start: MiB, length: MiB, dirty: true, zero: false },
            { start: 2 * MiB, length: 2 * MiB, dirty: false, zero: true },
          ]));
        } else {
          res.end(JSON.stringify([
            { start: 0, length: 2 * MiB, zero: false, hole: false },
            { start: 2 * MiB, length: 2 * MiB, zero: true, hole: true },
          ]));
        }
        return;
      }
      reading++;
      mostReading = Math.max(mostReading, reading);
      res.once('close', () => reading--);
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      const start = Number(m?.[1]);
      const end = Number(m?.[2]);
      if (mode === 'hang') return;
      if (mode === '500') {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`Server failed to read from ticket ${TICKET}: nbd error`);
        return;
      }
      if (mode === '416') {
        res.writeHead(416, { 'Content-Range': `bytes */${image.length}` });
        res.end('Requested range not satisfiable');
        return;
      }
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${image.length}`, 'Content-Length': String(end - start + 1) });
      if (mode === 'truncate') {
        res.write(image.subarray(start, start + 1000));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      setTimeout(() => res.end(image.subarray(start, end + 1)), delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/images/${TICKET}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    mode = 'ok';
    delayMs = 0;
  });

  async function open(timeoutMs = 5000, keepAliveMs = 0): Promise<ImageioSource> {
    return ImageioSource.open(new ImageioClient({ url: base, timeoutMs, maxConnections: 8 }), { expectedSize: image.length, keepAliveMs });
  }

  test('size from the zero map, extents in NBD terms, reads several at once into the given buffer', async () => {
    const src = await open();
    try {
      expect(src.size).toBe(4 * MiB);
      expect(src.maxReaders).toBe(3);
      expect(await src.extents('base:allocation')).toEqual([
        { offset: 0, length: 2 * MiB, flags: 0 },
        { offset: 2 * MiB, length: 2 * MiB, flags: NBD_STATE_ZERO | 1 },
      ]);
      expect(await src.extents(IMAGEIO_DIRTY_CONTEXT)).toEqual([
        { offset: 0, length: MiB, flags: 0 },
        { offset: MiB, length: MiB, flags: NBD_STATE_DIRTY },
        { offset: 2 * MiB, length: 2 * MiB, flags: 0 },
      ]);
      const into = Buffer.alloc(MiB);
      const got = await Promise.all([src.read(0, MiB, { into }), src.read(MiB, MiB), src.read(3 * MiB, MiB)]);
      expect(got[0]?.buffer).toBe(into.buffer);
      expect(Buffer.concat([got[0], got[1]]).equals(image.subarray(0, 2 * MiB))).toBe(true);
      expect((got[2]).equals(image.subarray(3 * MiB))).toBe(true);
      await expect(src.extents('qemu:dirty-bitmap:x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      // never more reads in flight than the ticket's max_readers, however many callers
      mostReading = 0;
      delayMs = 30; // each answer takes a while, so callers pile up
      const all = await Promise.all(Array.from({ length: 12 }, (_, i) => src.read((i % 4) * MiB, MiB)));
      expect(all.every((b, i) => b.equals(image.subarray((i % 4) * MiB, (i % 4 + 1) * MiB)))).toBe(true);
      expect(mostReading).toBe(3);
    } finally {
      src.close();
    }
  });

  test('a range cut short is a protocol error; 500 and 416 carry imageio’s words without the ticket; a hang times out', async () => {
    const src = await open(800);
    try {
      mode = 'truncate';
      const cut = (await src.read(0, MiB).catch((e: unknown) => e)) as AppError;
      expect(cut.code).toBe('IMAGEIO_PROTOCOL_ERROR');
      expect(cut.message).toMatch(/ended after 1000 of 1048576 bytes/);
      mode = '500';
      const e500 = (await src.read(0, MiB).catch((e: unknown) => e)) as AppError;
      expect(e500.code).toBe('IMAGEIO_HTTP_ERROR');
      expect(e500.message).toMatch(/500 - Server failed to read from ticket <ticket>: nbd error/);
      expect(e500.message).not.toContain(TICKET);
      mode = '416';
      const e416 = (await src.read(0, MiB).catch((e: unknown) => e)) as AppError;
      expect(e416.message).toMatch(/416 - Requested range not satisfiable/);
      mode = 'hang';
      const hung = (await src.read(0, MiB).catch((e: unknown) => e)) as AppError;
      expect(hung.code).toBe('IMAGEIO_TIMEOUT');
      mode = 'ok';
      expect((await src.read(0, 4096)).equals(image.subarray(0, 4096))).toBe(true);
    } finally {
      src.close();
    }
  });

  test('an idle ticket is kept alive with OPTIONS; a size other than the engine’s is refused', async () => {
    const src = await open(5000, 300);
    try {
      const before = options;
      await new Promise((r) => setTimeout(r, 1000));
      expect(options).toBeGreaterThan(before);
    } finally {
      src.close();
    }
    const wrong = ImageioSource.open(new ImageioClient({ url: base }), { expectedSize: MiB });
    await expect(wrong).rejects.toMatchObject({ code: 'IMAGEIO_PROTOCOL_ERROR' });
  });
});
