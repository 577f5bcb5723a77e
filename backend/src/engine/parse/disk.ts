import type { Disk, DiskAttachment, DiskFormat } from '../types';
import { DISK_INTERFACES, DISK_STATUSES } from '../types';
import { Fields, isInlined, listOf, type Json } from './fields';

const FORMATS: readonly DiskFormat[] = ['cow', 'raw'];

/** `disk` (reference §2 example, §3.2). */
export function parseDisk(o: Json): Disk {
  const f = new Fields('disk', o);
  const lunUnits = f.sub('lun_storage')?.nestedList('logical_units', 'logical_unit') ?? [];
  const lu = lunUnits[0] ? new Fields(`${f.label} logical unit`, lunUnits[0]) : undefined;
  return {
    id: f.reqStr('id'),
    alias: f.str('alias') ?? f.str('name') ?? '',
    description: f.str('description') ?? '',
    imageId: f.str('image_id'),
    provisionedSize: f.int64('provisioned_size'),
    actualSize: f.int64('actual_size'),
    totalSize: f.int64('total_size'),
    initialSize: f.int64('initial_size'),
    format: f.enumOf('format', FORMATS),
    sparse: f.bool('sparse'),
    qcowVersion: f.str('qcow_version'),
    backup: f.str('backup'),
    backupMode: f.str('backup_mode'),
    status: f.enumOf('status', DISK_STATUSES, 'locked'),
    storageType: f.str('storage_type'),
    contentType: f.str('content_type'),
    shareable: f.bool('shareable'),
    wipeAfterDelete: f.bool('wipe_after_delete'),
    propagateErrors: f.bool('propagate_errors'),
    storageDomainIds: (f.nestedList('storage_domains', 'storage_domain') ?? [])
      .map((sd) => (typeof sd.id === 'string' ? sd.id : ''))
      .filter((id) => id !== ''),
    diskProfileId: f.refId('disk_profile'),
    lun: lu ? { id: lu.reqStr('id'), size: lu.int64('size') } : undefined,
  };
}

export function parseDisks(body: unknown): Disk[] {
  return listOf(body, 'disk', 'disk list').map(parseDisk);
}

/** `disk_attachment`; the disk is parsed when the engine inlined it (follow=disk). */
export function parseDiskAttachment(o: Json): DiskAttachment {
  const f = new Fields('disk attachment', o);
  const diskObj = f.object('disk');
  const diskId = f.refId('disk') ?? f.reqStr('id');
  return {
    id: f.str('id') ?? diskId,
    diskId,
    vmId: f.refId('vm'),
    bootable: f.bool('bootable') ?? false,
    interface: f.enumOf('interface', DISK_INTERFACES),
    // The model leaves `active` unset on some engines; an attachment listed without it is plugged.
    active: f.bool('active') ?? true,
    passDiscard: f.bool('pass_discard'),
    readOnly: f.bool('read_only') ?? false,
    usesScsiReservation: f.bool('uses_scsi_reservation'),
    logicalName: f.str('logical_name'),
    disk: isInlined(diskObj) ? parseDisk(diskObj) : undefined,
  };
}

export function parseDiskAttachments(body: unknown): DiskAttachment[] {
  return listOf(body, 'disk_attachment', 'disk attachment list').map(parseDiskAttachment);
}
