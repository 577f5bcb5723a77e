import { diskIdFromAlias, isExcludedFromBackup, mapDisks, type Disk, type VmDisk } from '../../backend/src/engine';

const BOOT = '8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60';
const DATA = '3f9c1d2e-4a5b-4c6d-8e7f-0a1b2c3d4e5f';
const SCRATCH = 'c4d5e6f7-0819-4a2b-bc3d-4e5f60718293';
const UNPLUGGED = '0a0b0c0d-1111-4222-8333-444455556666';

function vmDisk(id: string, description = '', active = true): VmDisk {
  const disk: Disk = {
    id,
    alias: `disk-${id.slice(0, 4)}`,
    description,
    imageId: undefined,
    provisionedSize: 1 << 30,
    actualSize: undefined,
    totalSize: undefined,
    initialSize: undefined,
    format: 'cow',
    sparse: true,
    qcowVersion: undefined,
    backup: undefined,
    backupMode: undefined,
    status: 'ok',
    storageType: 'image',
    contentType: 'data',
    shareable: false,
    wipeAfterDelete: false,
    propagateErrors: false,
    storageDomainIds: [],
    diskProfileId: undefined,
    lun: undefined,
  };
  return {
    id,
    diskId: id,
    vmId: 'vm',
    bootable: false,
    interface: 'virtio_scsi',
    active,
    passDiscard: false,
    readOnly: false,
    usesScsiReservation: false,
    logicalName: undefined,
    disk,
  };
}

describe('isExcludedFromBackup', () => {
  test.each([
    ['backup=0', true],
    ['BACKUP=0', true],
    ['scratch space backup=0', true],
    ['tmp; backup=0, do not copy', true],
    ['(backup=0)', true],
    ['no copies please: backup=0.', true],
    ['line one\nbackup=0\tline two', true],
    ['', false],
    [undefined, false],
    ['backup=1', false],
    ['nobackup=0', false],
    ['backup=01', false],
    ['backup=0x', false],
    ['backup = 0', false],
    ['mybackup=0disk', false],
  ])('%j -> %s', (description, expected) => {
    expect(isExcludedFromBackup(description)).toBe(expected);
  });
});

describe('diskIdFromAlias', () => {
  test('strips the ua- prefix oVirt gives managed devices; anything else is not an alias', () => {
    expect(diskIdFromAlias(`ua-${BOOT}`)).toBe(BOOT);
    expect(diskIdFromAlias('virtio-disk0')).toBeUndefined();
    expect(diskIdFromAlias('ua-')).toBeUndefined();
  });
});

describe('mapDisks', () => {
  const disks = [vmDisk(BOOT), vmDisk(DATA), vmDisk(SCRATCH, 'tmp data backup=0'), vmDisk(UNPLUGGED, '', false)];

  test('maps ua-<disk id> devices, excludes backup=0 disks, lists foreign devices as unmapped', () => {
    const devices = [
      { deviceId: `ua-${BOOT}`, node: 'libvirt-3-format' },
      { deviceId: `ua-${DATA.toUpperCase()}`, node: 'libvirt-2-format' },
      { deviceId: `ua-${SCRATCH}`, node: 'libvirt-1-format' },
      { deviceId: 'ua-5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d', node: 'cdrom' },
    ];
    const m = mapDisks(disks, devices);
    expect(m.mapped.map((x) => [x.device.node, x.disk.diskId, x.matchedBy])).toEqual([
      ['libvirt-3-format', BOOT, 'alias'],
      ['libvirt-2-format', DATA, 'alias'],
    ]);
    expect(m.excluded).toEqual([{ disk: disks[2], device: devices[2], reason: 'backup=0' }]);
    expect(m.unmappedDevices).toEqual([{ device: devices[3], reason: 'no-engine-disk' }]);
    // the unplugged disk is not expected in QEMU at all
    expect(m.missingDisks).toEqual([]);
  });

  test('falls back to the serial: whole disk id, or a unique prefix of at least 20 characters', () => {
    const m = mapDisks(disks, [
      { deviceId: 'virtio-disk0', serial: BOOT },
      { deviceId: 'scsi0-0-0-1', serial: DATA.slice(0, 20) },
      { deviceId: 'virtio-disk2', serial: DATA.slice(0, 8) },
    ]);
    expect(m.mapped.map((x) => [x.device.deviceId, x.disk.diskId, x.matchedBy])).toEqual([
      ['virtio-disk0', BOOT, 'serial'],
      ['scsi0-0-0-1', DATA, 'serial'],
    ]);
    expect(m.unmappedDevices.map((u) => u.device.deviceId)).toEqual(['virtio-disk2']);
    // an excluded disk with no device is still reported as excluded, not missing
    expect(m.excluded).toEqual([{ disk: disks[2], device: undefined, reason: 'backup=0' }]);
  });

  test('an active disk QEMU does not show is missing; a second device claiming a disk is a duplicate', () => {
    const m = mapDisks(disks, [
      { deviceId: `ua-${BOOT}` },
      { deviceId: 'virtio-disk9', serial: BOOT },
    ]);
    expect(m.mapped).toHaveLength(1);
    expect(m.unmappedDevices).toEqual([{ device: { deviceId: 'virtio-disk9', serial: BOOT }, reason: 'duplicate' }]);
    expect(m.missingDisks.map((d) => d.diskId)).toEqual([DATA]);
  });

  test('an alias naming a disk of another VM falls through to the serial, then to unmapped', () => {
    const m = mapDisks(disks, [{ deviceId: 'ua-99999999-0000-4000-8000-000000000000', serial: DATA }, { deviceId: 'ua-99999999-0000-4000-8000-000000000001' }]);
    expect(m.mapped.map((x) => [x.disk.diskId, x.matchedBy])).toEqual([[DATA, 'serial']]);
    expect(m.unmappedDevices).toHaveLength(1);
  });
});
