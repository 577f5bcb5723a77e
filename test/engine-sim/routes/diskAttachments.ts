import express, { type Router } from 'express';
import { actVm, followPaths, getVm, requirePermit, sendCreated, visibleVms, wrap, type SimContext } from '../context';
import { incomplete, notFound, operationFailed } from '../faults';
import type { SimAttachmentRecord } from '../state';
import { attachmentView, diskView } from '../views';
import { body, bool, boolParam, obj, send, str } from '../wire';
import { createDiskFromBody } from './disks';

/**
 * A VM's disk attachments (reference §3.2, §7.1): list and read them (the disk inlined with
 * `follow=disk`), attach an existing disk or a new one (hot-plugged into a running VM when
 * active), detach one or remove it with its disk.
 */
export function diskAttachmentsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  r.get(
    '/vms/:id/diskattachments',
    wrap((req, res) => {
      const vm = st.vm(String(req.params['id']));
      const visible = vm && visibleVms(ctx, req, res).includes(vm);
      const follow = followPaths(req, ['disk']);
      const atts = visible
        ? vm.attachments.map((a) => {
            const w = attachmentView(vm, a);
            const d = st.disk(a.diskId);
            if (follow.length && d) w['disk'] = diskView(st, d);
            return w;
          })
        : [];
      send(req, res, 200, 'disk_attachments', atts.length ? { disk_attachment: atts } : {});
    }),
  );

  r.get(
    '/vms/:id/diskattachments/:diskId',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const a = vm.attachments.find((x) => x.diskId === req.params['diskId']);
      if (!a) throw notFound();
      const w = attachmentView(vm, a);
      const d = st.disk(a.diskId);
      if (followPaths(req, ['disk']).length && d) w['disk'] = diskView(st, d);
      send(req, res, 200, 'disk_attachment', w);
    }),
  );

  r.post(
    '/vms/:id/diskattachments',
    wrap(async (req, res) => {
      const b = body(req);
      const vmId = String(req.params['id']);
      const iface = str(b, 'interface');
      const diskBody = obj(b, 'disk');
      const missing = [iface ? '' : 'interface', diskBody ? '' : 'disk'].filter(Boolean);
      if (missing.length) throw incomplete('DiskAttachment', missing);
      const givenId = str(diskBody, 'id');
      const existing = givenId !== undefined && !str(diskBody, 'provisioned_size');
      // AttachDiskToVm / AddDisk: configure_vm_storage on the VM first, then attach_disk on the
      // disk, or create_disk on the new disk's storage domain (in createDiskFromBody)
      const vm = actVm(ctx, res, vmId, 'attach', 'configure_vm_storage');
      if (existing) requirePermit(ctx, res, 'attach_disk', { kind: 'disk', id: givenId });
      if (!['virtio', 'virtio_scsi', 'sata', 'ide'].includes(iface ?? '')) throw operationFailed(400, `Cannot attach Virtual Disk. Disk interface '${iface}' is not supported.`);
      let disk = givenId ? st.disk(givenId) : undefined;
      if (existing && !disk) throw operationFailed(400, 'Cannot attach Virtual Disk. The specified disk does not exist.');
      if (!disk) disk = await createDiskFromBody(ctx, res, diskBody ?? {}, true);
      const owner = st.vmOfDisk(disk.id);
      if (owner) throw operationFailed(409, `Cannot attach Virtual Disk. The disk is already attached to VM ${owner.name}.`);
      if (disk.status === 'locked' && vm.status !== 'down') throw operationFailed(409, `Cannot attach Virtual Disk: The following disks are locked: ${disk.alias}. Please try again in a few minutes.`);
      const att: SimAttachmentRecord = {
        diskId: disk.id,
        interface: iface as SimAttachmentRecord['interface'],
        bootable: bool(b, 'bootable') ?? false,
        active: bool(b, 'active') ?? false,
        passDiscard: bool(b, 'pass_discard') ?? false,
        readOnly: bool(b, 'read_only') ?? false,
      };
      if (att.bootable && vm.attachments.some((a) => a.bootable)) throw operationFailed(409, 'Cannot attach Virtual Disk. The VM already has a bootable disk.');
      vm.attachments.push(att);
      st.save();
      if (att.active && vm.status !== 'down') await ctx.power.hotplug(vm, disk);
      sendCreated(ctx, req, res, 'disk_attachment', attachmentView(vm, att));
    }),
  );

  r.delete(
    '/vms/:id/diskattachments/:diskId',
    wrap(async (req, res) => {
      // detach_only=false runs RemoveDisk (delete_disk on the disk), else DetachDiskFromVm
      // (configure_vm_storage on the VM)
      const diskId = String(req.params['diskId']);
      const remove = boolParam(req, 'detach_only') === false;
      if (remove) requirePermit(ctx, res, 'delete_disk', { kind: 'disk', id: diskId });
      const vm = remove ? st.vm(String(req.params['id'])) : actVm(ctx, res, String(req.params['id']), 'detach', 'configure_vm_storage');
      const a = vm?.attachments.find((x) => x.diskId === diskId);
      if (!vm || !a) throw notFound();
      if (a.active && vm.status !== 'down') throw operationFailed(409, 'Cannot detach Virtual Disk. Disk is plugged to a running VM; deactivate it first.');
      vm.attachments = vm.attachments.filter((x) => x !== a);
      const d = st.disk(a.diskId);
      if (remove && d) await ctx.deleteDisk(d);
      st.save();
      res.status(200).end();
    }),
  );


  return r;
}
