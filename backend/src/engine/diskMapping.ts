import { isExcludedFromBackup } from './model';
import type { VmDisk } from './types';

/**
 * Which engine disk each QEMU block device is (DESIGN.md §2, "disks have other names in the
 * manager than in QEMU"). oVirt gives every managed device the libvirt user alias
 * `ua-<device id>`, and a disk's device id is the disk id, so QEMU's qdev id is `ua-<disk id>`;
 * vdsm also sets the drive serial to the disk id, which QEMU keeps whole (guests see the first
 * 20 characters of a virtio-blk serial), the fallback when the alias says nothing. Pure functions.
 */

/** A block device as QEMU reports it (see qmp BlockDevice). */
export interface QemuDiskDevice {
  /** qdev id, e.g. `ua-8d4b0f5e-…` on oVirt, `virtio-disk0` elsewhere. */
  deviceId: string;
  serial?: string;
}

export interface MappedDisk<D extends QemuDiskDevice = QemuDiskDevice> {
  device: D;
  disk: VmDisk;
  matchedBy: 'alias' | 'serial';
}

export interface ExcludedDisk<D extends QemuDiskDevice = QemuDiskDevice> {
  disk: VmDisk;
  /** The device, when QEMU has one for the disk. */
  device: D | undefined;
  reason: 'backup=0';
}

export interface UnmappedDevice<D extends QemuDiskDevice = QemuDiskDevice> {
  device: D;
  reason: 'no-engine-disk' | 'duplicate';
}

export interface DiskMapping<D extends QemuDiskDevice = QemuDiskDevice> {
  /** Devices to back up, each with its engine disk. */
  mapped: MappedDisk<D>[];
  /** Disks whose description carries the `backup=0` token. */
  excluded: ExcludedDisk<D>[];
  /** QEMU devices no engine disk of the VM claims (CD-ROMs, hot-plugged leftovers, ...). */
  unmappedDevices: UnmappedDevice<D>[];
  /** Active engine disks with no QEMU device (not plugged in the running QEMU). */
  missingDisks: VmDisk[];
}

const ALIAS_PREFIX = 'ua-';
/** Shortest serial prefix accepted as naming a disk id (virtio-blk's guest-visible length). */
const MIN_SERIAL_PREFIX = 20;

/** `ua-<id>` → `<id>`; undefined for any other device id. */
export function diskIdFromAlias(deviceId: string): string | undefined {
  return deviceId.startsWith(ALIAS_PREFIX) && deviceId.length > ALIAS_PREFIX.length ? deviceId.slice(ALIAS_PREFIX.length) : undefined;
}

export function mapDisks<D extends QemuDiskDevice>(disks: readonly VmDisk[], devices: readonly D[]): DiskMapping<D> {
  const active = disks.filter((d) => d.active);
  const byId = new Map(active.map((d) => [d.diskId.toLowerCase(), d]));
  const claimed = new Map<string, D>();
  const mapped: MappedDisk<D>[] = [];
  const excluded: ExcludedDisk<D>[] = [];
  const unmappedDevices: UnmappedDevice<D>[] = [];

  for (const device of devices) {
    const match = matchDevice(device, byId, active);
    if (!match) {
      unmappedDevices.push({ device, reason: 'no-engine-disk' });
      continue;
    }
    const key = match.disk.diskId.toLowerCase();
    if (claimed.has(key)) {
      unmappedDevices.push({ device, reason: 'duplicate' });
      continue;
    }
    claimed.set(key, device);
    if (isExcludedFromBackup(match.disk.disk.description)) excluded.push({ disk: match.disk, device, reason: 'backup=0' });
    else mapped.push({ device, disk: match.disk, matchedBy: match.by });
  }

  const missingDisks: VmDisk[] = [];
  for (const disk of active) {
    if (claimed.has(disk.diskId.toLowerCase())) continue;
    if (isExcludedFromBackup(disk.disk.description)) excluded.push({ disk, device: undefined, reason: 'backup=0' });
    else missingDisks.push(disk);
  }
  return { mapped, excluded, unmappedDevices, missingDisks };
}

function matchDevice(
  device: QemuDiskDevice,
  byId: Map<string, VmDisk>,
  active: readonly VmDisk[],
): { disk: VmDisk; by: 'alias' | 'serial' } | undefined {
  const aliasId = diskIdFromAlias(device.deviceId)?.toLowerCase();
  const byAlias = aliasId !== undefined ? byId.get(aliasId) : undefined;
  if (byAlias) return { disk: byAlias, by: 'alias' };
  const serial = device.serial?.trim().toLowerCase();
  if (!serial) return undefined;
  const exact = byId.get(serial);
  if (exact) return { disk: exact, by: 'serial' };
  if (serial.length < MIN_SERIAL_PREFIX) return undefined;
  const candidates = active.filter((d) => d.diskId.toLowerCase().startsWith(serial));
  return candidates.length === 1 && candidates[0] ? { disk: candidates[0], by: 'serial' } : undefined;
}
