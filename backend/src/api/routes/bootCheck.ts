import { promises as fs } from 'fs';
import * as path from 'path';
import { Router, type Response } from 'express';
import { AppError } from '../../errors';
import { bootCheckScreenshotPath, readBootCheck, type BootCheckRecord } from '../../repository';
import type { BootCheckView, PointSummary, StartBootCheckResponse } from '../contract';
import type { ApiDeps } from '../deps';
import { requirePointDownload } from '../access';
import { principalOf, route } from '../middleware';
import { pointIdParam } from '../validate';
import { visiblePointOr404 } from '../visibility';

/**
 * Boot checks of a point: start one (a job, run one at a time on this machine), read the stored
 * verdict and its screenshot. A boot check reads every disk of the point and shows the guest's
 * screen, so each of these needs what a download of each of the point's disks needs
 * (access.ts requireDownload, the one rule); a VM the caller may not see is 404, as everywhere.
 */
export function bootCheckRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.post(
    '/points/:pointId/bootcheck',
    route(async (req, res) => {
      const pointId = pointIdParam(req.params['pointId']);
      const point = await mayBootCheck(deps, res, pointId, 'boot-check');
      const disk = bootDisk(req.body, point);
      const user = principalOf(res);
      const { job } = deps.queue.submit({
        vmId: point.vmId,
        vmName: point.vmName,
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        spec: { v: 1, kind: 'bootcheck', pointId, disk, origin: null },
      });
      deps.log.info({ jobId: job.id, pointId, user: user.userName }, 'boot check of a point queued');
      const body: StartBootCheckResponse = { job };
      res.status(202).json(body);
    }),
  );

  r.get(
    '/points/:pointId/bootcheck',
    route(async (req, res) => {
      const pointId = pointIdParam(req.params['pointId']);
      await mayBootCheck(deps, res, pointId, 'see the boot check of');
      const record = await storedOr404(deps, pointId);
      const body: BootCheckView = {
        pointId,
        state: record.state,
        reason: record.reason,
        matchedLine: record.matchedLine,
        at: record.startedAt,
        durationMs: record.durationMs,
        accel: record.accel,
        disks: record.disks,
        noNetworkDevice: record.noNetworkDevice,
        screenshot: record.screenshot !== null,
      };
      res.json(body);
    }),
  );

  r.get(
    '/points/:pointId/bootcheck/screenshot',
    route(async (req, res) => {
      const pointId = pointIdParam(req.params['pointId']);
      await mayBootCheck(deps, res, pointId, 'see the boot check of');
      const record = await storedOr404(deps, pointId);
      const file = bootCheckScreenshotPath(deps.repositoryPath, record);
      if (file === null) throw new AppError('NOT_FOUND', `the boot check of restore point ${pointId} kept no screenshot`);
      const data = await fs.readFile(file).catch((err: unknown) => {
        throw new AppError('NOT_FOUND', `the screenshot of the boot check of restore point ${pointId} is gone`, { cause: err });
      });
      res.setHeader('Content-Type', path.extname(file) === '.png' ? 'image/png' : 'image/x-portable-pixmap');
      res.setHeader('Cache-Control', 'no-store');
      res.send(data);
    }),
  );
  return r;
}

/** The point, when the caller may see it (else 404) and may download every one of its disks
 *  (else 403 naming the missing permit on what they can see). */
async function mayBootCheck(deps: ApiDeps, res: Response, pointId: string, action: string): Promise<PointSummary> {
  const point = await visiblePointOr404(deps, res, pointId);
  await requirePointDownload(deps, res, point, action);
  return point;
}

async function storedOr404(deps: ApiDeps, pointId: string): Promise<BootCheckRecord> {
  const record = await readBootCheck(deps.repositoryPath, pointId);
  if (!record) throw new AppError('NOT_FOUND', `restore point ${pointId} has not been boot-checked`);
  return record;
}

/** `{}` / no body: the point's first disk; `{"disk": "<device>"}`: that one. */
function bootDisk(body: unknown, point: PointSummary): string | null {
  if (body === undefined || body === null) return null;
  if (typeof body !== 'object' || Array.isArray(body)) throw new AppError('BAD_REQUEST', 'request body: must be an object like {"disk": "virtio-disk0"} or {}');
  const { disk, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new AppError('BAD_REQUEST', `request body: unknown field ${extra[0] ?? ''} (a boot check takes only "disk")`);
  if (disk === undefined) return null;
  if (typeof disk !== 'string' || !point.disks.some((d) => d.device === disk)) {
    throw new AppError('BAD_REQUEST', `request body: disk must be one of the point's disks (${point.disks.map((d) => d.device).join(', ')})`);
  }
  return disk;
}
