/**
 * What this product's writers put in a manifest's free-form `meta` and in each disk's `meta`
 * (FORMAT.md §7 leaves both to upper layers): the one writer/reader pair for them. Writers build
 * these typed objects; readers go through `readPointMeta` / `readDiskMeta`, which check every
 * field, because a manifest may come from an older version, another tool or a hand edit.
 */
import type { PointMethod } from './model';
import type { Manifest, ManifestDisk } from './types';

/** The engine's view of the VM when an engine-aware backup made the point. */
export type EngineVmMeta = {
  vmId: string;
  clusterId: string | null;
  hostId: string | null;
  /** The VM was down and was started paused for the backup. */
  startedPaused: boolean;
  /** Engine disks left out of the point (`backup=0` in their description...). */
  excluded: Array<{ diskId: string; alias: string; reason: string }>;
  /** QEMU devices that matched no engine disk. */
  unmappedDevices: Array<{ device: string; reason: string }>;
  /** Engine method: the engine backup's id (chosen by the product before the request). */
  backupId?: string;
  /** Engine method: the checkpoint the engine created (`to_checkpoint_id`): the
   *  `from_checkpoint_id` of the VM's next engine-method backup. Absent when the engine made
   *  none (only raw disks). */
  checkpointId?: string;
};

export type PointMeta = {
  /** The service job that wrote the point (absent for the CLI's). */
  jobId?: string;
  /** Who asked for it: an engine user's name, a policy. */
  requestedBy?: string;
  /** The writing program. */
  tool?: string;
  /** Why the point is crash- or filesystem-consistent (guest agent answer...). */
  consistencyReason?: string;
  /** Which method made the point; absent on points written before the engine method existed
   *  (read as `qmp`). */
  method?: PointMethod;
  engine?: EngineVmMeta;
};

/** The manager's identity of one disk. */
export type DiskMeta = {
  /** The engine's disk id. */
  diskId?: string;
  /** The engine's disk name, which people know it by. */
  alias?: string;
  description?: string;
};

export function readPointMeta(m: Pick<Manifest, 'meta'>): PointMeta {
  const o = record(m.meta) ?? {};
  const out: PointMeta = {};
  for (const k of ['jobId', 'requestedBy', 'tool', 'consistencyReason'] as const) {
    const v = o[k];
    if (typeof v === 'string') out[k] = v;
  }
  if (o['method'] === 'qmp' || o['method'] === 'engine') out.method = o['method'];
  const e = record(o['engine']);
  if (e && typeof e['vmId'] === 'string') {
    out.engine = {
      vmId: e['vmId'],
      clusterId: text(e['clusterId']),
      hostId: text(e['hostId']),
      startedPaused: e['startedPaused'] === true,
      excluded: list(e['excluded']).map((x) => ({ diskId: text(x['diskId']) ?? '', alias: text(x['alias']) ?? '', reason: text(x['reason']) ?? '' })),
      unmappedDevices: list(e['unmappedDevices']).map((x) => ({ device: text(x['device']) ?? '', reason: text(x['reason']) ?? '' })),
    };
    const backupId = text(e['backupId']);
    const checkpointId = text(e['checkpointId']);
    if (backupId) out.engine.backupId = backupId;
    if (checkpointId) out.engine.checkpointId = checkpointId;
  }
  return out;
}

export function readDiskMeta(d: Pick<ManifestDisk, 'meta'>): DiskMeta {
  const o = record(d.meta) ?? {};
  const out: DiskMeta = {};
  for (const k of ['diskId', 'alias', 'description'] as const) {
    const v = o[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** The name people know a disk of a point by: its engine alias, else its device id. */
export function diskLabel(d: Pick<ManifestDisk, 'meta' | 'device'>): string {
  return readDiskMeta(d).alias ?? d.device;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function list(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? v.flatMap((x: unknown) => { const r = record(x); return r ? [r] : []; }) : [];
}
