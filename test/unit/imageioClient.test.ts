import * as http from 'http';
import type { AddressInfo } from 'net';
import { ImageioClient } from '../../backend/src/engine';
import { AppError } from '../../backend/src/errors';

const TICKET = '0d5c9e4a-3b1f-4f7e-9a52-6f0c1d2e3b4a';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * The imageio client against a small HTTP server that records what it receives and answers as
 * ovirt-imageio does (reference §6): the request shapes, the reply parsing, errors that never
 * show the ticket, timeouts and aborts.
 */
describe('imageio client', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];
  let answer: (req: Seen, res: http.ServerResponse) => void;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
        seen.push(s);
        answer(s, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/images/${TICKET}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen.length = 0;
    answer = (_req, res) => res.end();
  });

  test('OPTIONS: features and writer limits from the reply, methods from Allow', async () => {
    answer = (_req, res) => {
      res.setHeader('Allow', 'GET,PUT,PATCH,OPTIONS');
      res.end(JSON.stringify({ unix_socket: '\u0000/org/ovirt/imageio', features: ['checksum', 'extents', 'flush', 'zero'], max_readers: 8, max_writers: 8 }));
    };
    const c = new ImageioClient({ url: base });
    try {
      expect(await c.options()).toEqual({ allow: ['GET', 'PUT', 'PATCH', 'OPTIONS'], features: ['checksum', 'extents', 'flush', 'zero'], maxReaders: 8, maxWriters: 8 });
      expect(seen[0]).toMatchObject({ method: 'OPTIONS', url: `/images/${TICKET}` });
    } finally {
      c.close();
    }
  });

  test('OPTIONS on an old server (405): plain GET/PUT, one writer', async () => {
    answer = (_req, res) => {
      res.statusCode = 405;
      res.end('Method not allowed');
    };
    const c = new ImageioClient({ url: base });
    try {
      expect(await c.options()).toEqual({ allow: ['GET', 'PUT'], features: [], maxReaders: 1, maxWriters: 1 });
    } finally {
      c.close();
    }
  });

  test('PUT sends the pieces as one body with Content-Range and flush=n; PATCH sends zero and flush as JSON', async () => {
    const c = new ImageioClient({ url: base });
    try {
      await c.put(1 << 20, [Buffer.from('abc'), Buffer.from('defg')]);
      await c.zero(4096, 65536);
      await c.flush();
    } finally {
      c.close();
    }
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([`PUT /images/${TICKET}?flush=n`, `PATCH /images/${TICKET}`, `PATCH /images/${TICKET}`]);
    const [put, zero, flush] = seen as [Seen, Seen, Seen];
    expect(put.headers['content-range']).toBe(`bytes ${1 << 20}-${(1 << 20) + 6}/*`);
    expect(put.headers['content-length']).toBe('7');
    expect(put.body.toString()).toBe('abcdefg');
    expect(zero.headers['content-type']).toBe('application/json');
    expect(JSON.parse(zero.body.toString())).toEqual({ op: 'zero', offset: 4096, size: 65536, flush: false });
    expect(JSON.parse(flush.body.toString())).toEqual({ op: 'flush' });
  });

  test('GET asks for exactly the range and checks the length; extents are parsed', async () => {
    answer = (req, res) => {
      if (req.url.endsWith('/extents?context=zero')) {
        res.end(JSON.stringify([{ start: 0, length: 65536, zero: false, hole: false }, { start: 65536, length: 1 << 20, zero: true, hole: true }]));
        return;
      }
      res.statusCode = 206;
      res.end(Buffer.alloc(10, 7));
    };
    const c = new ImageioClient({ url: base });
    try {
      expect(await c.read(100, 10)).toEqual(Buffer.alloc(10, 7));
      expect(seen[0]?.headers.range).toBe('bytes=100-109');
      await expect(c.read(100, 11)).rejects.toMatchObject({ code: 'IMAGEIO_PROTOCOL_ERROR' });
      expect(await c.extents()).toEqual([
        { start: 0, length: 65536, zero: false, hole: false, dirty: undefined },
        { start: 65536, length: 1 << 20, zero: true, hole: true, dirty: undefined },
      ]);
    } finally {
      c.close();
    }
  });

  test('an error answer is a coded error with the status and the text, without the ticket', async () => {
    answer = (_req, res) => {
      res.statusCode = 403;
      res.end(`You are not allowed to access this resource: No such ticket ${TICKET}\n`);
    };
    const c = new ImageioClient({ url: base });
    try {
      const err = (await c.put(0, Buffer.from('x')).catch((e: unknown) => e)) as AppError;
      expect(err).toBeInstanceOf(AppError);
      expect(err.code).toBe('IMAGEIO_HTTP_ERROR');
      expect(err.details).toMatchObject({ status: 403, offset: 0, length: 1 });
      expect(err.message).toMatch(/^imageio PUT failed with 403 \(ticket expired, cancelled or not allowed this operation\) - .*No such ticket <ticket>$/);
      expect(err.message).not.toContain(TICKET);
    } finally {
      c.close();
    }
  });

  test('a request that gets no answer times out; an aborted one says so', async () => {
    answer = () => undefined; // never answers
    const c = new ImageioClient({ url: base, timeoutMs: 300 });
    try {
      await expect(c.zero(0, 512)).rejects.toMatchObject({ code: 'IMAGEIO_TIMEOUT', message: 'imageio PATCH zero timed out after 300 ms' });
      const ctl = new AbortController();
      const p = c.put(0, Buffer.alloc(1024), { signal: ctl.signal, timeoutMs: 10_000 });
      setTimeout(() => ctl.abort(), 50);
      await expect(p).rejects.toMatchObject({ code: 'IMAGEIO_ABORTED', message: 'imageio PUT aborted' });
    } finally {
      c.close();
    }
  });

  test('a server that is not there is unreachable, named by origin only', async () => {
    const c = new ImageioClient({ url: `http://127.0.0.1:1/images/${TICKET}` });
    try {
      const err = (await c.options().catch((e: unknown) => e)) as AppError;
      expect(err.code).toBe('IMAGEIO_UNREACHABLE');
      expect(err.message).toBe('cannot reach imageio http://127.0.0.1:1 - ECONNREFUSED');
    } finally {
      c.close();
    }
  });
});
