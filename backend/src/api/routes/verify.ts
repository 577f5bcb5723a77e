import { Router, type Response } from 'express';
import { AppError } from '../../errors';
import type { DamageMark } from '../../repository';
import { REPOSITORY_JOB_VM_ID, type Job, type StartVerifyResponse } from '../contract';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { pointIdParam } from '../validate';
import { visibleOr404 } from './vms';

/** How long the damage marks read from the repository are reused (a verify job forgets them). */
const DAMAGE_TTL_MS = 10_000;

/** The repository's damage marks, cached briefly: the VM list and point details show them. */
export class DamageView {
  private cached: { at: number; marks: Promise<DamageMark[]> } | undefined;

  constructor(private readonly read: () => Promise<DamageMark[]>) {}

  marks(): Promise<DamageMark[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > DAMAGE_TTL_MS) {
      const marks = this.read();
      this.cached = { at: now, marks };
      marks.catch(() => {
        if (this.cached?.marks === marks) this.cached = undefined;
      });
    }
    return this.cached.marks;
  }

  async isDamaged(pointId: string): Promise<boolean> {
    return (await this.marks()).some((m) => m.pointId === pointId);
  }

  /** Damaged points per VM key (= engine VM id for points the service made). */
  async countByVm(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const m of await this.marks()) if (m.vmKey) out.set(m.vmKey, (out.get(m.vmKey) ?? 0) + 1);
    return out;
  }

  invalidate(): void {
    this.cached = undefined;
  }
}

/**
 * Verify jobs on demand. A point's verify: the caller must see the point's VM. The repository's
 * verify: any authenticated user may start it (damage to a chunk shared by several VMs' points
 * concerns everyone, and a verify changes nothing but damage marks and quarantined chunk files),
 * but the job's result shows each caller only the points of VMs they may see.
 */
export function verifyRoutes(deps: ApiDeps): Router {
  const r = Router();

  r.post(
    '/points/:pointId/verify',
    route(async (req, res) => {
      const pointId = pointIdParam(req.params['pointId']);
      emptyBody(req.body);
      const point = deps.catalog.getPoint(pointId);
      if (!point) throw new AppError('NOT_FOUND', `restore point ${pointId} not found`);
      await visibleOr404(deps, res, point.vmId).catch((err: unknown) => {
        throw err instanceof AppError && err.code === 'NOT_FOUND' ? new AppError('NOT_FOUND', `restore point ${pointId} not found`) : err;
      });
      const user = principalOf(res);
      const { job } = deps.queue.submit({
        kind: 'verify',
        vmId: point.vmId,
        vmName: point.vmName,
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        forceFull: false,
        meta: { pointId },
      });
      deps.log.info({ jobId: job.id, pointId, user: user.userName }, 'verify of a point queued');
      const body: StartVerifyResponse = { job };
      res.status(202).json(body);
    }),
  );

  r.post(
    '/repository/verify',
    route(async (req, res) => {
      emptyBody(req.body);
      const user = principalOf(res);
      // one repository verify at a time: a second request joins the pending one
      const pending = deps.catalog.listJobs({ vmIds: [REPOSITORY_JOB_VM_ID], states: ['queued', 'running'], limit: 1 }).jobs.find((j) => j.kind === 'verify');
      if (pending) {
        const body: StartVerifyResponse = { job: await verifyJobView(deps, res, pending) };
        res.status(200).json(body);
        return;
      }
      const { job } = deps.queue.submit({
        kind: 'verify',
        vmId: REPOSITORY_JOB_VM_ID,
        vmName: 'repository',
        hostId: null,
        requestedBy: { id: user.userId, name: user.userName },
        forceFull: false,
        meta: {},
      });
      deps.log.info({ jobId: job.id, user: user.userName }, 'verify of the repository queued');
      const body: StartVerifyResponse = { job };
      res.status(202).json(body);
    }),
  );
  return r;
}

/** A repository verify job as this caller may see it: counts and point ids of visible VMs only. */
export async function verifyJobView(deps: ApiDeps, res: Response, job: Job): Promise<Job> {
  if (!isRepositoryJob(job) || !job.result?.verified) return job;
  const visible = new Set((await deps.auth.visibleVms(principalOf(res))).map((x) => x.id));
  return repositoryJobFor(deps.catalog, job, visible);
}

/** A repository verify job with only the points of the VMs in `visible`. */
export function repositoryJobFor(catalog: Pick<ApiDeps['catalog'], 'jobMeta' | 'getPoint'>, job: Job, visible: ReadonlySet<string>): Job {
  const v = job.result?.verified;
  if (!isRepositoryJob(job) || !job.result || !v) return job;
  const stored = catalog.jobMeta?.(job.id)['verifiedVmKeys'];
  const vmKeys: Record<string, string> = typeof stored === 'object' && stored !== null ? (stored as Record<string, string>) : {};
  const mine = (id: string): boolean => {
    const vm = vmKeys[id] ?? catalog.getPoint(id)?.vmId;
    return vm !== undefined && visible.has(vm);
  };
  const damaged = v.damaged.filter(mine);
  return {
    ...job,
    result: {
      ...job.result,
      warnings: job.result.warnings.filter((w) => damaged.some((id) => w.includes(id))),
      verified: { points: Object.keys(vmKeys).filter(mine).length, damaged, quarantined: v.quarantined, cleared: v.cleared.filter(mine) },
    },
  };
}

/** Whether a job exists for a caller who may not see its VM: a repository verify does. */
export function isRepositoryJob(job: Job): boolean {
  return job.kind === 'verify' && job.vmId === REPOSITORY_JOB_VM_ID;
}

function emptyBody(body: unknown): void {
  if (body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)) return;
  throw new AppError('BAD_REQUEST', 'request body: a verify takes no options (send no body or {})');
}
