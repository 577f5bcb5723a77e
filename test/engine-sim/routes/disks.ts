import express, { type Router } from 'express';
import { grant, seesDisk } from '../access';
import { isFiltered, requirePermit, sendCreated, sendList, userOf, wrap, type SimContext } from '../context';
import { incomplete, invalidEnum, notFound, operationFailed } from '../faults';
import type { SimDiskRecord } from '../state';
import { role } from '../roles';
import { diskView } from '../views';
import { body, bool, int, list, send, str } from '../wire';

/**
 * Disks (reference §3.2, §7.1). POST /disks answers 202 with the disk `locked` until its image
 * exists (then `ok`), or 201 with an `ok` disk when the client sends `Expect: 201-created`.
 */
export function disksRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  const visibleDisks = (req: express.Request, res: express.Response): SimDiskRecord[] => {
    if (!isFiltered(req, res)) return st.data.disks;
    return st.data.disks.filter((d) => seesDisk(st, userOf(res), d));
  };

  r.get(
    '/disks',
    wrap((req, res) => {
      sendList(req, res, 'disks', 'disk', visibleDisks(req, res), { name: (d) => d.alias, alias: (d) => d.alias, id: (d) => d.id, description: (d) => d.description, status: (d) => d.status, format: (d) => d.format }, (d) => diskView(st, d));
    }),
  );

  r.get(
    '/disks/:id',
    wrap((req, res) => {
      const d = visibleDisks(req, res).find((x) => x.id === req.params['id']);
      if (!d) throw notFound();
      send(req, res, 200, 'disk', diskView(st, d));
    }),
  );

  r.post(
    '/disks',
    wrap(async (req, res) => {
      const blocking = (req.get('expect') ?? '').toLowerCase().includes('201-created');
      const disk = await createDiskFromBody(ctx, res, body(req), blocking);
      sendCreated(ctx, req, res, 'disk', diskView(st, disk), blocking ? 201 : 202);
    }),
  );

  r.delete(
    '/disks/:id',
    wrap(async (req, res) => {
      // BackendDiskResource.remove reads the disk first (the caller's filter: 404), then
      // RemoveDisk checks delete_disk on it
      const d = visibleDisks(req, res).find((x) => x.id === req.params['id']);
      if (!d) throw notFound();
      requirePermit(ctx, res, 'delete_disk', { kind: 'disk', id: d.id });
      if (d.status === 'locked') throw operationFailed(409, `Cannot remove Virtual Disk: The following disks are locked: ${d.alias}. Please try again in a few minutes.`);
      const vm = st.vmOfDisk(d.id);
      if (vm && vm.status !== 'down') throw operationFailed(409, 'Cannot remove Virtual Disk. VM is running.');
      await ctx.deleteDisk(d);
      res.status(200).end();
    }),
  );

  return r;
}

/**
 * AddDisk from a REST body: the REST layer's mandatory fields (BackendDisksResource), the
 * command's permission subject (create_disk on the storage domain, AddDiskCommand), then its
 * validation (ImagesHandler), the image, and the caller made DiskOperator of the new disk
 * (AddDiskCommand.addDiskPermissions). The VM-level subject of a disk added through a VM
 * (configure_vm_storage) is the caller's to check first.
 */
export async function createDiskFromBody(ctx: SimContext, res: express.Response, b: Record<string, unknown>, waitReady: boolean): Promise<SimDiskRecord> {
  const st = ctx.state;
  const sds = list(b, 'storage_domains', 'storage_domain');
  const missing = [str(b, 'provisioned_size') ? '' : 'provisionedSize', str(b, 'format') ? '' : 'format', sds.length ? '' : 'storageDomains.storageDomain.id|name'].filter(Boolean);
  if (missing.length) throw incomplete('Disk', missing);
  const format = str(b, 'format') ?? '';
  if (format !== 'cow' && format !== 'raw') throw invalidEnum(format, 'DiskFormat', ['cow', 'raw']);
  const sdRef = sds[0] ?? {};
  const sd = st.data.storageDomains.find((s) => s.id === str(sdRef, 'id') || s.name === str(sdRef, 'name'));
  requirePermit(ctx, res, 'create_disk', { kind: 'storagedomain', id: sd?.id ?? str(sdRef, 'id') ?? '' });
  if (!sd) throw operationFailed(400, 'Cannot add Virtual Disk. Storage Domain does not exist.');
  const size = int(b, 'provisioned_size') ?? 0;
  if (size <= 0) throw operationFailed(400, 'Cannot add Virtual Disk. Disk size must be greater than zero.');
  const backup = str(b, 'backup') ?? 'none';
  if (backup !== 'none' && backup !== 'incremental') throw invalidEnum(backup, 'DiskBackup', ['none', 'incremental']);
  const sparse = bool(b, 'sparse') ?? true;
  // ImagesHandler.checkImageConfiguration: raw + incremental, and preallocated qcow2 without it
  if (format === 'raw' && backup === 'incremental') throw operationFailed(409, 'Cannot add Virtual Disk. Disk configuration (RAW Sparse/Preallocated) is incompatible with the storage domain type.');
  if (format === 'cow' && !sparse && backup !== 'incremental') throw operationFailed(409, 'Cannot add Virtual Disk. Disk configuration (COW Preallocated) is incompatible with the storage domain type.');
  const id = str(b, 'id');
  if (id && st.disk(id)) throw operationFailed(409, 'Cannot add Virtual Disk. Disk or image ID is already in use.');
  const alias = str(b, 'alias') ?? str(b, 'name') ?? `disk-${Date.now()}`;
  const create = ctx.createDisk({ id, imageId: str(b, 'image_id'), alias, description: str(b, 'description') ?? '', format, sparse, backup, provisionedSize: size, storageDomainId: sd.id });
  const disk = await create;
  const user = userOf(res);
  grant(st, { roleId: role('DiskOperator').id, principalId: user.id, object: { kind: 'disk', id: disk.id } });
  if (waitReady) {
    while (st.disk(disk.id)?.status === 'locked') await new Promise((r) => setTimeout(r, 20));
  }
  return disk;
}
