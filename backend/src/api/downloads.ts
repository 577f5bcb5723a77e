import { randomBytes } from 'crypto';
import { Router, type Response } from 'express';
import { AppError } from '../errors';
import type { DownloadTicket } from './contract';
import type { ApiDeps } from './deps';
import { requireDownload } from './access';
import { bearerToken, principalOf, route } from './middleware';
import { deviceParam, parseDownloadBody, pointIdParam } from './validate';
import { visiblePointOr404 } from './visibility';

interface Ticket {
  pointId: string;
  vmId: string;
  vmName: string;
  device: string;
  diskId: string | null;
  format: 'raw' | 'qcow2';
  fileName: string;
  size: number;
  /** Absolute: a link is not extended by using it. */
  expires: number;
  /** Who asked. The token is kept in memory only, never logged: each use authenticates it again
   *  (the Authenticator's cache answers) and checks the permits with the identity and engine
   *  client that gives — a link outlives the cached identity it was issued under, whose client
   *  the Authenticator closes when it drops it. */
  token: string;
  userId: string;
  /** qcow2: the image built on first use, shared by the ranges that follow. */
  qcow2?: Promise<{ file: string; size: number }>;
}

/** A link works this long after it was issued, long enough to resume a broken download. */
const TICKET_TTL_MS = 60 * 60_000;
const MAX_TICKETS = 200;
/** Open links one user may hold. */
const MAX_PER_USER = 4;

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
        const principal = principalOf(res);
        const ticket: Ticket = {
          pointId,
          vmId: point.vmId,
          vmName: point.vmName,
          device,
          diskId: disk.diskId,
          format,
          fileName: `${`${point.vmName}-${disk.alias ?? device}-${point.createdAt.replace(/[:.]/g, '')}`.replace(/[^\w.-]/g, '_')}.${format === 'raw' ? 'img' : 'qcow2'}`,
          size: disk.virtualSize,
          expires: Date.now() + TICKET_TTL_MS,
          token: bearerToken(req.headers.authorization),
          userId: principal.userId,
        };
        await requireDownload(this.deps.permits, principal, { id: point.vmId, name: point.vmName }, { id: disk.diskId, device });
        await this.sweep(Date.now());
        const mine = [...this.tickets.values()].filter((t) => t.userId === principal.userId).length;
        if (mine >= MAX_PER_USER) throw new AppError('TOO_MANY_REQUESTS', `${principal.userName} has ${mine} download links open already (at most ${MAX_PER_USER}): use one or wait until one expires`);
        if (this.tickets.size >= MAX_TICKETS) throw new AppError('TOO_MANY_REQUESTS', 'too many downloads are open: try again later');
        const id = randomBytes(24).toString('hex');
        this.tickets.set(id, ticket);
        this.deps.log.info({ pointId, device, format, user: principal.userName }, 'download ticket issued');
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
        // the link is the user's: it stops working when they log out (401) or lose the permits (403)
        await this.mayDownload(t).catch(async (err: unknown) => {
          await this.drop(id, t);
          throw err;
        });
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

  /** The ticket's user, as the engine knows their token now, may still download its disk. */
  private async mayDownload(t: Ticket): Promise<void> {
    const p = await this.deps.auth.authenticate(t.token);
    await requireDownload(this.deps.permits, p, { id: t.vmId, name: t.vmName }, { id: t.diskId, device: t.device });
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweep(Number.POSITIVE_INFINITY);
  }

  private async sweep(now: number): Promise<void> {
    for (const [id, t] of this.tickets) if (t.expires < now) await this.drop(id, t);
  }

  /** Forgets a ticket and removes its qcow2 image, if one was built (scratch space). */
  private async drop(id: string, t: Ticket): Promise<void> {
    this.tickets.delete(id);
    const img = await t.qcow2?.catch(() => undefined);
    if (img) await this.deps.images.release(img.file).catch(() => undefined);
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
