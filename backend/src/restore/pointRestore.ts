import type { EngineClient } from '../engine';
import { AppError } from '../errors';
import type { Manifest, Repository } from '../repository';
import { executeRestore, type RestoreProgress, type RestoreResult } from './engine';
import type { RestorePlanView, RestoreRequestBody } from './model';
import { planRestore, planView, pointDataBytes, readInventory, type RestoreInventory, type RestorePlan, type UsableTargets } from './plan';
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
 * the queue, or across a restart), refuses if that plan has errors, then executes it. The point
 * is read once — manifest and indexes — and held open (leased) while it is planned and restored.
 */
export class PointRestorer {
  constructor(private readonly deps: PointRestoreDeps) {}

  /** The point held open for one restore: plan it, then execute exactly that plan (the
   *  operator's CLI prints the plan between the two). Release it in a finally. */
  async open(pointId: string, holder: string): Promise<OpenRestore> {
    return new OpenRestore(this.deps.engine, await openPoint(this.deps.repository, pointId, 'restore', holder));
  }

  /** The plan for a point now, as the restore dialog shows it: VMs offered as attach targets are
   *  those in `visibleVmIds`; `usable` (a portal user) says which of the engine's clusters and
   *  storage domains they may create in — the plan picks, names and offers only those. */
  async planView(pointId: string, request: RestoreRequestBody, opts: PlanViewOptions): Promise<RestorePlanView> {
    const restore = await this.open(pointId, opts.holder);
    try {
      const { plan, inventory, usable } = await restore.plan(request, opts.usable ? { usable: opts.usable } : {});
      return planView(plan, inventory, opts.visibleVmIds, usable);
    } finally {
      await restore.release();
    }
  }

  /** Plans with the engine as it is now and executes (a restore job). RESTORE_FAILED naming
   *  every blocking problem when the plan has errors (nothing written then). */
  async run(pointId: string, request: RestoreRequestBody, opts: RestoreRunOptions): Promise<{ plan: RestorePlan; result: RestoreResult }> {
    const restore = await this.open(pointId, opts.holder);
    try {
      const { plan } = await restore.plan(request, opts.signal ? { signal: opts.signal } : {});
      return { plan, result: await restore.execute(plan, opts) };
    } finally {
      await restore.release();
    }
  }
}

export interface PlanViewOptions {
  visibleVmIds: ReadonlySet<string>;
  /** Who holds the point open while it is planned. */
  holder: string;
  /** The clusters and storage domains the caller may create in, judged from the inventory the
   *  plan reads; absent: every one (a backup admin). */
  usable?: (inventory: RestoreInventory) => Promise<UsableTargets>;
}

/** One point open for a restore (PointRestorer.open). */
export class OpenRestore {
  constructor(
    private readonly engine: EngineClient,
    private readonly point: PointSource,
  ) {}

  /** Read once, when the point was opened. */
  get manifest(): Manifest {
    return this.point.manifest;
  }

  /** The plan with the engine as it is now; nothing is written. */
  async plan(
    request: RestoreRequestBody,
    opts: { signal?: AbortSignal; usable?: (inventory: RestoreInventory) => Promise<UsableTargets> } = {},
  ): Promise<{ plan: RestorePlan; inventory: RestoreInventory; usable: UsableTargets | undefined }> {
    const [dataBytes, inventory] = await Promise.all([pointDataBytes(this.point), readInventory(this.engine, opts.signal)]);
    const usable = opts.usable ? await opts.usable(inventory) : undefined;
    const plan = planRestore({ manifest: this.point.manifest, dataBytes, inventory, request: { ...request, pointId: this.point.manifest.pointId }, ...(usable ? { usable } : {}) });
    return { plan, inventory, usable };
  }

  /** Carries out a plan of this point. RESTORE_FAILED naming every blocking problem when it has
   *  errors: nothing is written then. */
  async execute(plan: RestorePlan, opts: Omit<RestoreRunOptions, 'holder'> = {}): Promise<RestoreResult> {
    if (plan.pointId !== this.point.manifest.pointId) throw new AppError('INVALID_ARGUMENT', `a plan of point ${plan.pointId} cannot restore point ${this.point.manifest.pointId}`);
    for (const p of plan.problems) opts.log?.(p.severity === 'error' ? 'error' : 'warn', p.message);
    if (!plan.ok) {
      const errors = plan.problems.filter((p) => p.severity === 'error');
      throw new AppError('RESTORE_FAILED', `the restore cannot go ahead: ${errors.map((p) => p.message).join('; ')}`, { details: { problems: errors } });
    }
    return executeRestore(plan, {
      engine: this.engine,
      point: this.point,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  /** Ends the point's lease. Idempotent. */
  release(): Promise<void> {
    return this.point.release();
  }
}
