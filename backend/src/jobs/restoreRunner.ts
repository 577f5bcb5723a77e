import type { JobResult } from './model';
import type { RestorePlanView, RestoreRequestBody } from '../restore';
import type { EngineClient } from '../engine';
import { AppError } from '../errors';
import type { Repository } from '../repository';
import { executeRestore } from '../restore/engine/execute';
import { planRestore, pointDataBytes, readInventory, type RestoreInventory, type RestorePlan } from '../restore/plan';
import type { RestoreSpec } from './spec';
import type { JobRunner } from './types';

export interface RestoreDeps {
  /** The service account: disks, transfers and VMs are created with its rights. */
  engine: EngineClient;
  repository: Repository;
}

/** A plan for a point, from the repository and the engine as they are now. */
export async function planPointRestore(deps: RestoreDeps, pointId: string, body: RestoreRequestBody, signal?: AbortSignal): Promise<{ plan: RestorePlan; inventory: RestoreInventory }> {
  const manifest = await deps.repository.readManifest(pointId);
  const [dataBytes, inventory] = await Promise.all([pointDataBytes(deps.repository, manifest), readInventory(deps.engine, signal)]);
  const plan = planRestore({ manifest, dataBytes, inventory, request: { ...body, pointId } });
  return { plan, inventory };
}

/** The plan as the restore dialog shows it (no OVF text) with the choices it offers; VMs are
 *  limited to those the user may see. */
export function planView(plan: RestorePlan, inventory: RestoreInventory, visibleVmIds: ReadonlySet<string>): RestorePlanView {
  return {
    pointId: plan.pointId,
    sourceVm: plan.sourceVm,
    mode: plan.mode,
    vm: plan.vm && {
      name: plan.vm.name,
      clusterId: plan.vm.clusterId,
      clusterName: plan.vm.clusterName,
      regenerateIds: plan.vm.regenerateIds,
      regenerateMacs: plan.vm.regenerateMacs,
      description: plan.vm.description,
      nics: plan.vm.nics,
    },
    attachToVmId: plan.attachToVmId,
    useProxy: plan.useProxy,
    disks: plan.disks.map((d) => ({
      device: d.device,
      diskId: d.diskId,
      name: d.name,
      storageDomainId: d.storageDomainId,
      storageDomainName: d.storageDomainName,
      format: d.format,
      sparse: d.sparse,
      provisionedSize: d.provisionedSize,
      dataBytes: d.dataBytes,
      interface: d.interface,
      bootable: d.bootable,
    })),
    problems: plan.problems,
    ok: plan.ok,
    targets: {
      clusters: inventory.clusters,
      storageDomains: inventory.storageDomains.map((s) => ({ id: s.id, name: s.name, availableBytes: s.availableBytes, usable: s.type === 'data' && s.status === 'active' })),
      vms: inventory.vms.filter((v) => visibleVmIds.has(v.id)).map((v) => ({ id: v.id, name: v.name })),
    },
  };
}

/**
 * Runs a restore job: plans again with the engine as it is when the job starts (a job may have
 * waited in the queue, or across a restart), refuses if the plan has errors now, then executes.
 */
export function restoreRunner(deps: RestoreDeps): JobRunner<RestoreSpec> {
  return async (ctx) => {
    const body = ctx.spec.request;
    const pointId = ctx.spec.pointId;
    ctx.progress({ phase: 'planning', disk: null, bytesDone: 0, bytesTotal: 0, disksDone: 0, disksTotal: 0 });
    const { plan } = await planPointRestore(deps, pointId, body, ctx.signal);
    for (const p of plan.problems) ctx.log(p.severity === 'error' ? 'error' : 'warn', p.message);
    if (!plan.ok) {
      const errors = plan.problems.filter((p) => p.severity === 'error').map((p) => p.message);
      throw new AppError('RESTORE_FAILED', `the restore cannot go ahead: ${errors.join('; ')}`);
    }
    const total = plan.disks.length;
    let done = 0;
    let lastDisk: string | null = null;
    const r = await executeRestore(plan, {
      engine: deps.engine,
      repository: deps.repository,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onProgress: (p) => {
        if (p.disk !== lastDisk && lastDisk !== null && p.phase === 'uploading') done = Math.min(total, done + 1);
        lastDisk = p.disk;
        ctx.progress({ phase: p.phase, disk: p.disk, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, disksDone: p.phase === 'done' ? total : done, disksTotal: total });
      },
      log: (level, msg) => ctx.log(level, msg),
    });
    const result: JobResult = {
      pointId,
      bytesRead: r.uploads.reduce((n, u) => n + u.dataBytes, 0),
      bytesStored: 0,
      durationMs: r.durationMs,
      disks: [],
      warnings: r.warnings,
      restored: { vmId: r.vmId, vmName: r.vmName, disks: r.disks.map((d) => ({ device: d.device, diskId: d.diskId, name: d.name, verified: d.verified })) },
    };
    ctx.log('info', r.vmId ? `restored as vm ${r.vmName ?? r.vmId} (${r.vmId})` : `restored ${r.disks.length} disk(s): ${r.disks.map((d) => d.name).join(', ')}`);
    return result;
  };
}
