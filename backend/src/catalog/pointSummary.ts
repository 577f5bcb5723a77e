import type { PointBootCheck, PointDisk, PointSummary } from './model';
import { readDiskMeta, readPointMeta, type BootCheckRecord, type Manifest, type ManifestDisk } from '../repository';

/**
 * Manifest → the contract's PointSummary. Pure, so the API can show a point it read straight
 * from the repository exactly as it shows one from the catalog.
 */
export function toPointSummary(m: Manifest, bootCheck: PointBootCheck | null = null): PointSummary {
  const disks = m.disks.map(toPointDisk);
  const sum = (f: (d: PointDisk) => number): number => disks.reduce((n, d) => n + f(d), 0);
  return {
    id: m.pointId,
    vmId: manifestVmId(m),
    vmName: m.vm.name,
    createdAt: m.createdAt,
    completedAt: m.completedAt,
    parentPointId: m.parentPointId,
    consistency: m.consistency,
    // points from before the engine method carry none: all were made through QMP
    method: readPointMeta(m).method ?? 'qmp',
    virtualSize: sum((d) => d.virtualSize),
    bytesRead: sum((d) => d.bytesRead),
    bytesStored: sum((d) => d.bytesStored),
    durationSeconds: Math.max(0, Date.parse(m.completedAt) - Date.parse(m.createdAt)) / 1000,
    lockedUntil: m.lockedUntil,
    disks,
    bootCheck,
  };
}

/** What the point summary shows of a stored boot check. */
export function pointBootCheck(r: BootCheckRecord): PointBootCheck {
  return { state: r.state, at: r.startedAt };
}

/** The engine's VM id when the point was made through the engine, else the repository key
 *  (a VM backed up straight through QMP has no other identity). */
export function manifestVmId(m: Manifest): string {
  return m.vm.id ?? m.vm.key;
}

/** The service job that wrote the point; null for points made by the CLI. */
export function manifestJobId(m: Manifest): string | null {
  return readPointMeta(m).jobId ?? null;
}

function toPointDisk(d: ManifestDisk): PointDisk {
  // Engine-aware backups record the engine's disk; plain QMP backups have no such thing.
  const meta = readDiskMeta(d);
  return {
    device: d.device,
    diskId: meta.diskId ?? null,
    alias: meta.alias ?? null,
    format: d.format,
    virtualSize: d.virtualSize,
    mode: d.mode,
    reason: d.reason,
    bitmapPersistent: d.bitmapPersistent,
    bytesRead: d.bytesRead,
    bytesStored: d.bytesStored,
    chunksNew: d.chunksNew,
    chunksReused: d.chunksReused,
    chunksZero: d.chunksZero,
  };
}
