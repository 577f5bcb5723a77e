import { AppError } from '../../errors';
import { processActor, type Manifest, type Repository } from '../../repository';
import { PointRestorer, type OpenRestore, type RestorePlan, type RestoreRequestBody } from '../../restore';
import { engineFromOptions, requireEngineOptions, type EngineOptions } from '../engineOptions';
import { printJson, printLine } from '../output';
import { formatBytes, ProgressBar } from '../progressBar';

/**
 * `olvm-backup restore --engine …`: a point back into the engine without the service — for
 * when the portal or the service is down, the disaster-recovery case — with the same planner and
 * executor the portal's restore uses: as a new VM, or back under its original ids (VM id, disk
 * ids, MACs) when nothing in the engine uses them. The plan and its problems are printed before
 * anything is written; `--dry-run` prints only the plan.
 */
export interface EngineRestoreOptions extends EngineOptions {
  point: string;
  asNewVm?: string;
  originalIds?: boolean;
  cluster?: string;
  storageDomain?: string;
  disk?: string[];
  dryRun?: boolean;
  json?: boolean;
}

export async function restoreIntoEngine(o: EngineRestoreOptions, repository: Repository): Promise<void> {
  requireEngineOptions(o, 'a restore into the engine');
  if ((o.asNewVm === undefined) === (o.originalIds !== true)) throw new AppError('INVALID_ARGUMENT', 'give one of --as-new-vm NAME (a new vm beside anything there) and --original-ids (the vm back as it was)');
  const engine = await engineFromOptions(o);
  const bar = ProgressBar.forStderr(o.json === true);
  // the point is read once and held open (leased) from the plan to the end of the restore: the
  // plan printed is the plan executed
  let restore: OpenRestore | undefined;
  try {
    restore = await new PointRestorer({ engine, repository }).open(o.point, processActor('cli'));
    const request = await requestFrom(o, restore.manifest, engine);
    const { plan } = await restore.plan(request);
    if (!o.json || o.dryRun) printPlan(plan, o.json === true);
    if (o.dryRun) {
      if (!plan.ok) process.exitCode = 3;
      return;
    }
    // refuses a plan with errors before anything is written
    const result = await restore.execute(plan, {
      onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, `${p.phase}${p.disk ? ` ${p.disk}` : ''}`),
    });
    bar.finish();
    for (const w of result.warnings) process.stderr.write(`olvm-backup: warning: ${w}\n`);
    if (o.json) {
      printJson({ point: o.point, vmId: result.vmId, vmName: result.vmName, disks: result.disks.map((d) => ({ device: d.device, diskId: d.diskId, name: d.name, verified: d.verified })), durationMs: result.durationMs });
      return;
    }
    printLine(result.vmId ? `restored as vm ${result.vmName ?? ''} (${result.vmId})` : `restored ${result.disks.length} disk(s)`);
    for (const d of result.disks) printLine(`  ${d.name} (${d.diskId}): ${d.verified ? 'read back and identical' : 'not read back'}`);
  } finally {
    bar.finish();
    await restore?.release();
    await engine.close();
  }
}

async function requestFrom(o: EngineRestoreOptions, manifest: Manifest, engine: Awaited<ReturnType<typeof engineFromOptions>>): Promise<RestoreRequestBody> {
  const byName = async <T extends { id: string; name: string }>(list: Promise<T[]>, wanted: string, what: string): Promise<string> => {
    const all = await list;
    const hit = all.find((x) => x.id === wanted || x.name === wanted);
    if (!hit) throw new AppError('INVALID_ARGUMENT', `the engine has no ${what} '${wanted}' (it has: ${all.map((x) => x.name).join(', ') || 'none'})`);
    return hit.id;
  };
  const clusterId = o.cluster ? await byName(engine.listClusters(), o.cluster, 'cluster') : undefined;
  const domainId = o.storageDomain ? await byName(engine.listStorageDomains(), o.storageDomain, 'storage domain') : undefined;
  for (const d of o.disk ?? []) {
    if (!manifest.disks.some((x) => x.device === d)) throw new AppError('INVALID_ARGUMENT', `point ${o.point} has no disk ${d} (it has: ${manifest.disks.map((x) => x.device).join(', ')})`);
  }
  const disks = o.disk || domainId ? manifest.disks.map((d) => ({ device: d.device, include: !o.disk || o.disk.includes(d.device), ...(domainId ? { storageDomainId: domainId } : {}) })) : undefined;
  return {
    mode: 'vm',
    ...(o.originalIds ? { vmName: manifest.vm.name, regenerateIds: false, regenerateMacs: false } : { vmName: o.asNewVm as string, regenerateIds: true, regenerateMacs: true }),
    ...(clusterId ? { clusterId } : {}),
    ...(disks ? { disks } : {}),
  };
}

function printPlan(plan: RestorePlan, json: boolean): void {
  if (json) {
    printJson({
      point: plan.pointId,
      ok: plan.ok,
      vm: plan.vm && { name: plan.vm.name, cluster: plan.vm.clusterName, originalIds: !plan.vm.regenerateIds, nics: plan.vm.nics },
      disks: plan.disks.map((d) => ({ device: d.device, diskId: d.diskId, name: d.name, storageDomain: d.storageDomainName, format: d.format, sparse: d.sparse, size: d.provisionedSize, data: d.dataBytes })),
      problems: plan.problems,
    });
    return;
  }
  const vm = plan.vm;
  printLine(`plan: point ${plan.pointId} of vm ${plan.sourceVm.name}${vm ? ` → vm ${vm.name} in cluster ${vm.clusterName}${vm.regenerateIds ? ' (new ids)' : ' (original ids)'}` : ''}`);
  for (const d of plan.disks) printLine(`  disk ${d.name} (${d.diskId}) on ${d.storageDomainName}: ${d.format}${d.sparse ? ', sparse' : ''}, ${formatBytes(d.provisionedSize)} (${formatBytes(d.dataBytes)} of data)`);
  for (const n of vm?.nics ?? []) printLine(`  nic ${n.name}: ${n.mac ?? 'new mac'}${n.network ? ` on ${n.network}` : ''}`);
  for (const p of plan.problems) printLine(`  ${p.severity}: ${p.message}`);
  if (!plan.ok) printLine('the plan has errors: nothing will be written');
}
