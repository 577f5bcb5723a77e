import type { EngineClient } from '../engine';
import { AppError } from '../errors';
import type { Repository } from '../repository';
import { executeRestore, type RestoreProgress, type RestoreResult } from './engine';
import type { RestorePlanView, RestoreRequestBody } from './model';
import { planRestore, planView, pointDataBytes, readInventory, type RestoreInventory, type RestorePlan } from './plan';
import { openPoint, type PointSource } from './pointSource';

export interface PointRestoreDeps {
  /** The service account (or the operator's CLI account): disks, transfers and VMs are created
   *  with its rights. */
  engine: EngineClient;
  repository: Repository;
}

export interface RestoreRunOptions {
  /** Who holds the point open (shown to whoever is refused its deletion meanwhile). */
  holder: string;
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * "Restore this point": restore/ owns it from the point id to the objects in the engine. A plan
 * reads the point and the engine as they are now; a run plans again (a job may have waited in
 * the queue, or across a restart), refuses if that plan has errors, then executes it. Each reads
 * the point once — manifest and indexes — and holds it open while it works.
 */
export class PointRestorer {
  constructor(private readonly deps: PointRestoreDeps) {}

  /** The plan for a point now, as the restore dialog shows it; VMs offered as attach targets are
   *  those in `visibleVmIds`. */
  async planView(pointId: string, request: RestoreRequestBody, visibleVmIds: ReadonlySet<string>, holder: string): Promise<RestorePlanView> {
    const point = await openPoint(this.deps.repository, pointId, 'restore', holder);
    try {
      const { plan, inventory } = await this.plan(point, request);
      return planView(plan, inventory, visibleVmIds);
    } finally {
      await point.release();
    }
  }

  /** The plan with the engine as it is now, nothing written (the CLI's --dry-run). */
  async dryRun(pointId: string, request: RestoreRequestBody, holder: string, signal?: AbortSignal): Promise<RestorePlan> {
    const point = await openPoint(this.deps.repository, pointId, 'restore', holder);
    try {
      return (await this.plan(point, request, signal)).plan;
    } finally {
      await point.release();
    }
  }

  /** Plans with the engine as it is now and executes. RESTORE_FAILED naming every blocking
   *  problem when the plan has errors (nothing written then). */
  async run(pointId: string, request: RestoreRequestBody, opts: RestoreRunOptions): Promise<{ plan: RestorePlan; result: RestoreResult }> {
    const point = await openPoint(this.deps.repository, pointId, 'restore', opts.holder);
    try {
      const { plan } = await this.plan(point, request, opts.signal);
      for (const p of plan.problems) opts.log?.(p.severity === 'error' ? 'error' : 'warn', p.message);
      if (!plan.ok) {
        const errors = plan.problems.filter((p) => p.severity === 'error');
        throw new AppError('RESTORE_FAILED', `the restore cannot go ahead: ${errors.map((p) => p.message).join('; ')}`, { details: { problems: errors } });
      }
      const result = await executeRestore(plan, {
        engine: this.deps.engine,
        point,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      return { plan, result };
    } finally {
      await point.release();
    }
  }

  private async plan(point: PointSource, request: RestoreRequestBody, signal?: AbortSignal): Promise<{ plan: RestorePlan; inventory: RestoreInventory }> {
    const [dataBytes, inventory] = await Promise.all([pointDataBytes(point), readInventory(this.deps.engine, signal)]);
    const plan = planRestore({ manifest: point.manifest, dataBytes, inventory, request: { ...request, pointId: point.manifest.pointId } });
    return { plan, inventory };
  }
}
