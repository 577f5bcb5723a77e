import { randomBytes } from 'crypto';
import { Router, type Response } from 'express';
import { AppError } from '../errors';
import type { DownloadTicket } from './contract';
import type { ApiDeps } from './deps';
import { principalOf, route } from './middleware';
import { deviceParam, parseDownloadBody, pointIdParam } from './validate';
import { visiblePointOr404 } from './visibility';

interface Ticket {
  pointId: string;
  device: string;
  format: 'raw' | 'qcow2';
  fileName: string;
  size: number;
  expires: number;
  /** qcow2: the image built on first use, shared by the ranges that follow. */
  qcow2?: Promise<{ file: string; size: number }>;
}

/** A ticket lives this long after its last use: long enough to resume a broken download. */
const TICKET_TTL_MS = 30 * 60_000;
const MAX_TICKETS = 200;

/**
 * Disk image downloads. A browser cannot send a bearer token with a plain link, so an
 * authenticated POST returns a short-lived ticket URL (the model imageio uses); the GET on it
 * needs nothing else, streams the image, and honours one `Range` so an interrupted download
 * resumes. Raw images stream straight from the repository; qcow2 ones are built once into
 * scratch space and removed when the ticket expires.
 */
export class Downloads {
  private readonly tickets = new Map<string, Ticket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: ApiDeps) {
    this.sweeper = setInterval(() => void this.sweep(Date.now()), 60_000);
    this.sweeper.unref();
  }

  /** Authenticated routes: ticket creation. */
  issueRoutes(): Router {
    const r = Router();
    r.post(
      '/points/:pointId/disks/:device/download',
      route(async (req, res) => {
        const pointId = pointIdParam(req.params['pointId']);
        const device = deviceParam(req.params['device']);
        const { format } = parseDownloadBody(req.body);
        const point = await visiblePointOr404(this.deps, res, pointId);
        const disk = point.disks.find((d) => d.device === device);
        if (!disk) throw new AppError('NOT_FOUND', `restore point ${pointId} has no disk ${device}`);
        const id = randomBytes(24).toString('hex');
        const base = `${point.vmName}-${disk.alias ?? device}-${point.createdAt.replace(/[:.]/g, '')}`.replace(/[^\w.-]/g, '_');
        const ticket: Ticket = { pointId, device, format, fileName: `${base}.${format === 'raw' ? 'img' : 'qcow2'}`, size: disk.virtualSize, expires: Date.now() + TICKET_TTL_MS };
        await this.sweep(Date.now());
        if (this.tickets.size >= MAX_TICKETS) throw new AppError('SERVICE_STOPPING', 'too many downloads are open: try again later');
        this.tickets.set(id, ticket);
        this.deps.log.info({ pointId, device, format, user: principalOf(res).userName }, 'download ticket issued');
        const body: DownloadTicket = { url: `/api/v1/downloads/${id}`, expiresAt: new Date(ticket.expires).toISOString(), sizeBytes: disk.virtualSize, format, fileName: ticket.fileName };
        res.status(201).json(body);
      }),
    );
    return r;
  }

  /** Unauthenticated: the ticket in the path is the credential. */
  serveRoutes(): Router {
    const r = Router();
    r.get(
      '/downloads/:ticket',
      route(async (req, res) => {
        const id = String(req.params['ticket']);
        const t = /^[0-9a-f]{48}$/.test(id) ? this.tickets.get(id) : undefined;
        if (!t || t.expires < Date.now()) throw new AppError('NOT_FOUND', 'download link unknown or expired: start the download again');
        t.expires = Date.now() + TICKET_TTL_MS;
        res.setHeader('Content-Disposition', `attachment; filename="${t.fileName}"`);
        if (t.format === 'qcow2') {
          t.qcow2 ??= this.deps.images.qcow2(t.pointId, t.device);
          const img = await t.qcow2.catch((err: unknown) => {
            t.qcow2 = undefined;
            throw err;
          });
          await sendFile(res, img.file);
          return;
        }
        const range = parseRange(req.headers.range, t.size);
        res.setHeader('Accept-Ranges', 'bytes');
        res.setHeader('Content-Type', 'application/octet-stream');
        if (range === 'unsatisfiable') {
          res.setHeader('Content-Range', `bytes */${t.size}`);
          throw new AppError('RANGE_NOT_SATISFIABLE', `range ${req.headers.range ?? ''} is outside the image (${t.size} bytes)`);
        }
        const [start, end] = range ?? [0, t.size - 1];
        if (range) {
          res.status(206);
          res.setHeader('Content-Range', `bytes ${start}-${end}/${t.size}`);
        }
        res.setHeader('Content-Length', String(end - start + 1));
        const stream = await this.deps.images.raw(t.pointId, t.device, start, end);
        await new Promise<void>((resolve) => {
          stream.on('error', (err) => {
            this.deps.log.warn({ pointId: t.pointId, err: err.message }, 'download stream failed');
            res.destroy(err); // the client sees a short body, never a wrong one
            resolve();
          });
          res.on('close', () => {
            stream.destroy();
            resolve();
          });
          stream.pipe(res);
        });
      }),
    );
    return r;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweep(Number.POSITIVE_INFINITY);
  }

  private async sweep(now: number): Promise<void> {
    for (const [id, t] of this.tickets) {
      if (t.expires >= now) continue;
      this.tickets.delete(id);
      const img = await t.qcow2?.catch(() => undefined);
      if (img) await this.deps.images.release(img.file).catch(() => undefined);
    }
  }
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; several ranges are served whole (allowed by RFC 9110). */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}

function sendFile(res: Response, file: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    res.sendFile(file, { acceptRanges: true, cacheControl: false, headers: { 'Content-Type': 'application/octet-stream' } }, (err) => {
      if (err && !res.headersSent) reject(err);
      else resolve();
    });
  });
}
