import { describeError } from '../errors';
import { parseOvf } from '../engine';
import type { Manifest } from '../repository';
import type { OvfSummary, PointDetail, PointSummary } from './contract';

/** A point as the restore dialog needs it: the catalog's summary plus what only the manifest
 *  holds (the VM definition, the disks left out, how the backup ran). */
export function pointDetail(summary: PointSummary, m: Manifest, warn: (msg: string) => void, damaged = false): PointDetail {
  const engine = isRecord(m.meta['engine']) ? m.meta['engine'] : {};
  const excluded = Array.isArray(engine['excluded']) ? engine['excluded'].filter(isRecord) : [];
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
    excludedDisks: excluded.map((e) => ({ diskId: str(e['diskId']), alias: str(e['alias']), reason: str(e['reason']) })),
    startedPaused: engine['startedPaused'] === true,
    jobId: typeof m.meta['jobId'] === 'string' ? m.meta['jobId'] : null,
    damaged,
  };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
