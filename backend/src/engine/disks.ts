import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseDisk, parseDiskAttachments } from './parse/disk';
import { entityOf } from './parse/fields';
import type { Disk, DiskAttachment, VmDisk } from './types';

export async function getDisk(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<Disk> {
  return parseDisk(entityOf(await conn.request({ ...opts, method: 'GET', path: `/disks/${seg(id)}` }), `disk ${id}`));
}

/** `GET /vms/{id}/diskattachments`; with `withDisks` the disks are inlined (follow=disk). */
export async function listDiskAttachments(
  conn: EngineConnection,
  vmId: string,
  opts: EngineCallOptions & { withDisks?: boolean } = {},
): Promise<DiskAttachment[]> {
  const query = opts.withDisks ? { follow: 'disk' } : undefined;
  return parseDiskAttachments(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(vmId)}/diskattachments`, query }));
}

/**
 * A VM's disks with their attachments in one round trip (follow=disk, engine 4.2+); disks the
 * engine did not inline (older engines ignore `follow`) are read one by one.
 */
export async function listVmDisks(conn: EngineConnection, vmId: string, opts: EngineCallOptions = {}): Promise<VmDisk[]> {
  const attachments = await listDiskAttachments(conn, vmId, { ...opts, withDisks: true });
  return completeDisks(conn, attachments, opts);
}

export async function completeDisks(conn: EngineConnection, attachments: DiskAttachment[], opts: EngineCallOptions): Promise<VmDisk[]> {
  const out: VmDisk[] = [];
  for (const a of attachments) {
    out.push({ ...a, disk: a.disk ?? (await getDisk(conn, a.diskId, opts)) });
  }
  return out;
}
