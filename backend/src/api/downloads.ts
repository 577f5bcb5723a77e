import { randomBytes } from 'crypto';
import { Router, type Response } from 'express';
import { AppError } from '../errors';
import type { DownloadTicket } from './contract';
import type { ApiDeps } from './deps';
import { principalOf, route } from './middleware';
import { deviceParam, parseDownloadBody, pointIdParam } from './validate';
import type { Principal } from './auth';
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
  /** Who asked (in memory only): each use checks that the engine still accepts their token and
   *  still grants them the permits. */
  principal: Principal;
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
          principal,
        };
        await this.mayDownload(ticket);
        await this.sweep(Date.now());
        const mine = [...this.tickets.values()].filter((t) => t.principal.userId === principal.userId).length;
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
        // the link is the user's: it stops working when they log out or lose the permits
        await this.mayDownload(t).catch((err: unknown) => {
          this.tickets.delete(id);
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

  /**
   * `backup_disk` on the VM and `edit_disk_properties` on the disk (what the engine itself demands
   * for a download of a disk's data). A disk the engine no longer has — or a point made outside
   * the engine — has nobody holding permits on it: then only backup admins may download it.
   */
  private async mayDownload(t: Ticket): Promise<void> {
    const p = t.principal;
    if (await this.deps.permits.isBackupAdmin(p)) return;
    const what = `download a disk of vm ${t.vmName}`;
    if (t.diskId === null) await this.deps.permits.requireBackupAdmin(p, `${what} (its point names no engine disk)`);
    else {
      await this.deps.permits.require(p, what, [
        { obj: { kind: 'vm', id: t.vmId }, permits: ['backup_disk'], label: `vm ${t.vmName}` },
        { obj: { kind: 'disk', id: t.diskId }, permits: ['edit_disk_properties'], label: `disk ${t.device} of vm ${t.vmName}` },
      ]);
    }
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
