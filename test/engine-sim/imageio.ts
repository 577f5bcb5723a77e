import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { once } from 'events';
import { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, type Extent } from '../../backend/src/nbd';
import type { SimTransfer, Transfers } from './transfers';

/**
 * The ovirt-imageio HTTP API (reference §6) for the simulator's transfers: OPTIONS, ranged GET,
 * PUT with Content-Range, PATCH zero/flush, GET extents, /info/. The ticket id in the URL is the
 * only credential. Errors are imageio's: a status and a plain-text message. Served by the daemon
 * listener (transfer_url) and the proxy listener (proxy_url) alike. Not served: checksum (not
 * advertised in OPTIONS either) and the unix socket.
 */

const CHUNK = 4 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Handler = (req: Request, res: Response) => Promise<void>;

const query = (req: Request, name: string): string | undefined => {
  const v = req.query[name];
  return typeof v === 'string' ? v : undefined;
};

export function imageioRouter(transfers: Transfers): Router {
  const r = express.Router();

  const wrap =
    (fn: Handler) =>
    (req: Request, res: Response, next: NextFunction): void => {
      fn(req, res).catch(next);
    };

  const ticketOf = (req: Request, op: 'read' | 'write'): SimTransfer => {
    const id = String(req.params['ticket'] ?? '');
    if (!id) throw new HttpError(400, 'Ticket id is required');
    const t = transfers.byTicket(id);
    if (!t?.nbd) throw new HttpError(403, `You are not allowed to access this resource: No such ticket ${id}`);
    // a write (upload) ticket may also read; a download ticket only reads
    if (op === 'write' && t.direction !== 'upload') throw new HttpError(403, `You are not allowed to access this resource: Ticket ${id} forbids write`);
    return t;
  };

  const allowedRange = (t: SimTransfer, offset: number, size: number): void => {
    if (offset < 0 || size < 0 || offset + size > t.size) {
      throw new HttpError(416, 'Requested range out of allowed range', { 'Content-Range': `bytes */${t.size}` });
    }
  };

  r.get('/info/', (_req, res) => {
    res.json({ version: '2.4.7' });
  });

  r.options(
    '/images/:ticket',
    wrap(async (req, res) => {
      if (req.params['ticket'] === '*') {
        res.set('Allow', 'OPTIONS,GET,PUT,PATCH').json({ features: ['extents', 'flush', 'zero'] });
        return;
      }
      const t = ticketOf(req, 'read');
      t.lastActivity = Date.now();
      const write = t.direction === 'upload';
      res.set('Allow', write ? 'OPTIONS,GET,PUT,PATCH' : 'OPTIONS,GET');
      res.json({ features: write ? ['extents', 'flush', 'zero'] : ['extents'], max_readers: 8, max_writers: 8 });
      await Promise.resolve();
    }),
  );

  r.get(
    '/images/:ticket',
    wrap(async (req, res) => {
      const range = req.get('range');
      let offset = 0;
      let size: number | undefined;
      if (range) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
        if (!m || m[1] === '') throw new HttpError(416, range.includes(',') ? 'Multiple ranges are not supported' : 'suffix-byte-range-spec not supported yet');
        offset = Number(m[1]);
        if (m[2] !== '') size = Number(m[2]) - offset + 1;
      }
      const t = ticketOf(req, 'read');
      if (size !== undefined) allowedRange(t, offset, size);
      else {
        if (offset > t.size) throw new HttpError(416, 'Requested range out of allowed range', { 'Content-Range': `bytes */${t.size}` });
        size = t.size - offset;
      }
      const fault = transfers.takeFault(t);
      if (fault === 'error') throw new HttpError(500, 'Simulated server error');
      if (fault === 'hang') {
        // never answered; the open request keeps the transfer active, as imageio's would
        const sock = res.socket;
        if (sock) {
          const end = transfers.begin(t);
          transfers.hung.add(sock);
          sock.once('close', () => {
            transfers.hung.delete(sock);
            end();
          });
        }
        return;
      }
      const end = transfers.begin(t);
      try {
        res.status(range ? 206 : 200);
        res.set({ 'Content-Length': String(size), 'Content-Type': 'application/octet-stream', 'Content-Disposition': 'attachment' });
        if (range) res.set('Content-Range', `bytes ${offset}-${offset + size - 1}/${t.size}`);
        const nbd = t.nbd;
        if (!nbd) throw new HttpError(403, 'Ticket was cancelled');
        for (let pos = offset; pos < offset + size; ) {
          const n = Math.min(CHUNK, offset + size - pos);
          const buf = await nbd.read(pos, n);
          if (fault === 'truncate') {
            // half of the body, then the connection drops (a daemon dying mid-request)
            res.write(buf.subarray(0, Math.max(1, Math.floor(Math.min(n, size) / 2))));
            await new Promise((r) => setTimeout(r, 20));
            res.destroy();
            return;
          }
          t.transferred += n;
          pos += n;
          if (!res.write(buf)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
          if (res.destroyed) return;
        }
        res.end();
      } finally {
        end();
      }
    }),
  );

  r.put(
    '/images/:ticket',
    wrap(async (req, res) => {
      const lengthHeader = req.get('content-length');
      if (lengthHeader === undefined) throw new HttpError(400, 'Content-Length header is required');
      const size = Number(lengthHeader);
      let offset = 0;
      const cr = req.get('content-range');
      if (cr) {
        const m = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(cr.trim());
        if (!m) throw new HttpError(400, `Invalid Content-Range header: ${cr}`);
        offset = Number(m[1]);
      }
      const flushParam = query(req, 'flush') ?? 'y';
      if (flushParam !== 'y' && flushParam !== 'n') throw new HttpError(400, `Invalid value for 'flush': ${flushParam}`);
      const flush = flushParam === 'y';
      const t = ticketOf(req, 'write');
      allowedRange(t, offset, size);
      const nbd = t.nbd;
      if (!nbd) throw new HttpError(403, 'Ticket was cancelled');
      const end = transfers.begin(t);
      try {
        let pos = offset;
        let pending: Buffer[] = [];
        let pendingLen = 0;
        const writeOut = async (): Promise<void> => {
          if (pendingLen === 0) return;
          const data = Buffer.concat(pending, pendingLen);
          pending = [];
          pendingLen = 0;
          await nbd.write(pos, data);
          pos += data.length;
          t.transferred += data.length;
        };
        for await (const chunk of req as AsyncIterable<Buffer>) {
          if (pos - offset + pendingLen + chunk.length > size) throw new HttpError(400, 'Request body is larger than Content-Length');
          pending.push(chunk);
          pendingLen += chunk.length;
          if (pendingLen >= CHUNK) await writeOut();
        }
        await writeOut();
        if (pos - offset !== size) throw new HttpError(400, `Partial content: expected ${size} bytes, got ${pos - offset}`);
        if (flush) await nbd.flush();
        res.status(200).end();
      } finally {
        end();
      }
    }),
  );

  r.patch(
    '/images/:ticket',
    wrap(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new HttpError(400, `Invalid JSON message ${(e as Error).message}`);
      }
      if (typeof msg !== 'object' || msg === null) throw new HttpError(400, 'Invalid JSON message: not an object');
      const op = msg['op'];
      if (op !== 'zero' && op !== 'flush') throw new HttpError(400, `Invalid value for 'op': ${JSON.stringify(op)}`);
      if (op === 'zero') {
        const size = msg['size'];
        const offset = msg['offset'] ?? 0;
        if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw new HttpError(400, "Missing or invalid value for 'size'");
        if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) throw new HttpError(400, "Invalid value for 'offset'");
        const t = ticketOf(req, 'write');
        allowedRange(t, offset, size);
        const end = transfers.begin(t);
        try {
          if (size > 0) await t.nbd?.writeZeroes(offset, size);
          if (msg['flush'] === true) await t.nbd?.flush();
        } finally {
          end();
        }
      } else {
        const t = ticketOf(req, 'write');
        const end = transfers.begin(t);
        try {
          await t.nbd?.flush();
        } finally {
          end();
        }
      }
      res.status(200).end();
    }),
  );

  r.get(
    '/images/:ticket/extents',
    wrap(async (req, res) => {
      const t = ticketOf(req, 'read');
      const context = query(req, 'context') ?? 'zero';
      if (context !== 'zero' && context !== 'dirty') throw new HttpError(400, `Invalid value for 'context': ${context}`);
      // only backup downloads of incremental disks in incremental backups carry dirty extents
      const dirtyContext = t.dirtyContext;
      if (context === 'dirty' && !dirtyContext) throw new HttpError(404, 'Ticket does not support dirty extents');
      const end = transfers.begin(t);
      try {
        const nbd = t.nbd;
        if (!nbd) throw new HttpError(403, 'Ticket was cancelled');
        const extents = await nbd.extents('base:allocation');
        if (context === 'dirty' && dirtyContext) {
          res.json(dirtyExtents(await nbd.extents(dirtyContext), extents));
          return;
        }
        // imageio reports holes (unallocated, reads from the backing chain) for qcow2 only
        const qcow = t.diskFormat === 'cow';
        res.json(extents.map((e) => ({ start: e.offset, length: e.length, zero: (e.flags & NBD_STATE_ZERO) !== 0, hole: qcow && (e.flags & NBD_STATE_HOLE) !== 0 })));
      } finally {
        end();
      }
    }),
  );

  r.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!(err instanceof HttpError)) {
      next(err);
      return;
    }
    res.status(err.status).set(err.headers).type('text/plain').send(`${err.message}\n`);
  });

  return r;
}

/**
 * imageio's dirty extents (extent.py DirtyExtent): the dirty bitmap's runs split where the
 * allocation's zero flag changes, so a dirty range that reads as zeroes says so; adjacent runs
 * with equal flags merged.
 */
export function dirtyExtents(dirty: Extent[], alloc: Extent[]): Array<{ start: number; length: number; dirty: boolean; zero: boolean }> {
  const out: Array<{ start: number; length: number; dirty: boolean; zero: boolean }> = [];
  let i = 0;
  let j = 0;
  let pos = 0;
  while (i < dirty.length && j < alloc.length) {
    const d = dirty[i] as Extent;
    const a = alloc[j] as Extent;
    const end = Math.min(d.offset + d.length, a.offset + a.length);
    const e = { start: pos, length: end - pos, dirty: (d.flags & NBD_STATE_DIRTY) !== 0, zero: (a.flags & NBD_STATE_ZERO) !== 0 };
    const last = out[out.length - 1];
    if (last && last.dirty === e.dirty && last.zero === e.zero) last.length += e.length;
    else if (e.length > 0) out.push(e);
    pos = end;
    if (end >= d.offset + d.length) i++;
    if (end >= a.offset + a.length) j++;
  }
  return out;
}
