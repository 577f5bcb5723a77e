import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { parseDiskAttachment } from './parse/disk';
import { entityOf } from './parse/fields';
import type { DiskAttachment, DiskInterface } from './types';

/** How an existing disk is plugged into a VM (reference §7.3). */
export interface NewDiskAttachment {
  diskId: string;
  interface: DiskInterface;
  bootable: boolean;
  /** Always sent: the engine's behaviour without it is undefined. */
  active: boolean;
  passDiscard?: boolean;
  readOnly?: boolean;
}

/** `POST /vms/{id}/diskattachments` with the id of an existing disk. */
export async function attachDisk(conn: EngineConnection, vmId: string, a: NewDiskAttachment, opts: EngineCallOptions = {}): Promise<DiskAttachment> {
  const body: Record<string, unknown> = { disk: { id: a.diskId }, interface: a.interface, bootable: a.bootable, active: a.active };
  if (a.passDiscard !== undefined) body.pass_discard = a.passDiscard;
  if (a.readOnly !== undefined) body.read_only = a.readOnly;
  const reply = await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(vmId)}/diskattachments`, body });
  return parseDiskAttachment(entityOf(reply, `attachment of disk ${a.diskId} to vm ${vmId}`));
}

/** `DELETE /vms/{id}/diskattachments/{diskId}`: unplugs and detaches; the disk stays (floating). */
export async function detachDisk(conn: EngineConnection, vmId: string, diskId: string, opts: EngineCallOptions = {}): Promise<void> {
  await conn.request({ ...opts, method: 'DELETE', path: `/vms/${seg(vmId)}/diskattachments/${seg(diskId)}`, query: { detach_only: true } });
}
