import { parseOvf } from '../engine';
import { describeError } from '../errors';
import { readPointMeta, type Manifest } from '../repository';
import type { OvfSummary, PointDetail, PointSummary } from './model';

/** A point as the restore dialog needs it: the catalog's summary plus what only the manifest
 *  holds (the VM definition, the disks left out, how the backup ran). */
export function pointDetail(summary: PointSummary, m: Manifest, warn: (msg: string) => void, damaged = false): PointDetail {
  const meta = readPointMeta(m);
  let ovf: OvfSummary | null = null;
  if (m.vmDefinition?.kind === 'ovf') {
    try {
      const o = parseOvf(m.vmDefinition.content);
      ovf = {
        name: o.name,
        description: o.description,
        memoryMiB: o.memoryMb,
        cpus: o.cpu.count,
        osType: o.osType ?? null,
        nics: o.nics.map((n) => ({ name: n.name, mac: n.mac ?? null, network: n.network ?? null })),
        disks: o.disks.map((d) => ({ diskId: d.diskId, alias: d.alias ?? null, sizeBytes: d.sizeGiB === undefined ? null : d.sizeGiB * 1024 ** 3 })),
      };
    } catch (err) {
      warn(`the ovf stored in point ${m.pointId} cannot be read: ${describeError(err)}`);
    }
  }
  return {
    ...summary,
    ovfAvailable: m.vmDefinition?.kind === 'ovf',
    ovf,
    excludedDisks: meta.engine?.excluded ?? [],
    startedPaused: meta.engine?.startedPaused ?? false,
    jobId: meta.jobId ?? null,
    damaged,
  };
}
