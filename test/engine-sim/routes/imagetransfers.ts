import express, { type Router } from 'express';
import { seesDisk, SYSTEM } from '../access';
import { isFiltered, queryRefused, requirePermit, sendAction, sendCreated, sendList, userOf, wrap, type SimContext } from '../context';
import { invalidEnum, notFound, operationFailed } from '../faults';
import type { SimTransfer } from '../transfers';
import { API, body, bool, clean, int, ref, refId, s, send, str, type Wire } from '../wire';

/**
 * Image transfers, engine side (reference §5). Only imageio's NBD path (`format=raw`, guest
 * data) is simulated; `format=cow` on a qcow2 disk (the file backend) is refused with a fault
 * that says so. Backup downloads (`backup` + `disk`) read the backup's NBD export.
 */
export function imageTransfersRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  const view = (t: SimTransfer): Wire => {
    const base = `${API}/imagetransfers/${t.id}`;
    const live = t.phase === 'transferring';
    const urls = ctx.urls();
    return clean({
      href: base,
      id: t.id,
      actions: { link: ['resume', 'cancel', 'extend', 'finalize', 'pause'].map((rel) => ({ href: `${base}/${rel}`, rel })) },
      active: s(t.inflight > 0),
      direction: t.direction,
      format: t.format,
      inactivity_timeout: s(t.inactivityTimeout),
      phase: t.phase,
      proxy_url: live ? `${urls.proxy}/images/${t.ticket}` : undefined,
      shallow: s(t.shallow),
      timeout_policy: t.timeoutPolicy,
      transfer_url: live ? `${urls.daemon}/images/${t.ticket}` : undefined,
      transferred: s(t.transferred),
      host: ref('hosts', t.hostId),
      // the REST mapper fills the deprecated `image` link, not `disk` (reference §5.2)
      image: ref('images', t.diskId),
      backup: t.backupId ? { id: t.backupId } : undefined,
    });
  };

  // GetAllImageTransfers is an admin query: refused when filtered (QueriesCommandBase)
  r.get(
    '/imagetransfers',
    wrap((req, res) => {
      if (isFiltered(req, res)) throw queryRefused();
      sendList(req, res, 'image_transfers', 'image_transfer', ctx.transfers.list(), { id: (t) => t.id, phase: (t) => t.phase }, view);
    }),
  );

  r.get(
    '/imagetransfers/:id',
    wrap((req, res) => {
      // GetImageTransferById, filtered: only transfers of disks the caller sees (image_transfers_sp.sql)
      const t = ctx.transfers.get(String(req.params['id']));
      const disk = t ? st.disk(t.diskId) : undefined;
      if (!t || (isFiltered(req, res) && !(disk && seesDisk(st, userOf(res), disk)))) throw notFound();
      send(req, res, 200, 'image_transfer', view(t));
    }),
  );

  r.post(
    '/imagetransfers',
    wrap((req, res) => {
      const b = body(req);
      if (refId(b, 'snapshot')) throw operationFailed(400, 'Cannot transfer Virtual Disk. Transfers of disk snapshots are not simulated.');
      const diskId = refId(b, 'disk') ?? refId(b, 'image');
      if (!diskId) throw operationFailed(400, 'Cannot transfer Virtual Disk. A disk or a snapshot is required.');
      // TransferDiskImage with a disk given: edit_disk_properties on it
      requirePermit(ctx, res, 'edit_disk_properties', { kind: 'disk', id: diskId });
      const disk = st.disk(diskId);
      if (!disk) throw operationFailed(400, 'Cannot transfer Virtual Disk. The specified disk does not exist.');
      const direction = str(b, 'direction') ?? 'upload';
      if (direction !== 'upload' && direction !== 'download') throw invalidEnum(direction, 'ImageTransferDirection', ['download', 'upload']);
      const format = str(b, 'format') ?? disk.format;
      if (format !== 'raw' && format !== 'cow') throw invalidEnum(format, 'DiskFormat', ['cow', 'raw']);
      const policyOf = str(b, 'timeout_policy') ?? 'legacy';
      if (policyOf !== 'legacy' && policyOf !== 'pause' && policyOf !== 'cancel') throw invalidEnum(policyOf, 'ImageTransferTimeoutPolicy', ['cancel', 'legacy', 'pause']);
      const backupId = refId(b, 'backup');
      if (backupId) {
        // TransferDiskImageCommand.validate for backups: the backup ready, format not cow; the
        // download then reads the backup's export, served by the host running the VM
        const backup = ctx.backups.get(backupId);
        if (!backup) throw operationFailed(400, 'Cannot transfer Virtual Disk. The specified VM backup does not exist.');
        if (backup.phase !== 'ready') throw operationFailed(409, `Cannot transfer Virtual Disk. The VM backup is not in READY phase, backup phase is ${backup.phase.toUpperCase()}.`);
        // only a format given as cow is refused (BackendImageTransfersResource leaves it unset otherwise)
        if (str(b, 'format') === 'cow') throw operationFailed(400, 'Cannot transfer Virtual Disk. The specified format is not applicable for VM backup.');
        const src = ctx.backups.exportOf(backup.id, disk.id);
        if (!src) throw operationFailed(400, `Cannot transfer Virtual Disk. Disk ${disk.alias} is not part of VM backup ${backup.id}.`);
        if (direction !== 'download') throw operationFailed(400, 'Cannot transfer Virtual Disk. A VM backup can only be downloaded.');
        const host = (backup.live ? st.host(backup.hostId) : undefined) ?? (refId(b, 'host') ? st.host(refId(b, 'host') ?? '') : undefined) ?? st.firstHost();
        const t = ctx.transfers.create(disk, { direction, inactivityTimeout: int(b, 'inactivity_timeout') ?? 60, timeoutPolicy: policyOf, shallow: false, hostId: host.id, backup: { backupId: backup.id, ...src } });
        sendCreated(ctx, req, res, 'image_transfer', view(t));
        return;
      }
      if (format === 'cow' && disk.format === 'cow') throw operationFailed(400, 'Cannot transfer Virtual Disk. format=cow (qcow2 file transfer) is not simulated; use format=raw.');
      if (disk.status === 'locked') throw operationFailed(409, `Cannot transfer Virtual Disk: The following disks are locked: ${disk.alias}. Please try again in a few minutes.`);
      if (disk.status === 'illegal') throw operationFailed(409, `Cannot transfer Virtual Disk. Disk ${disk.alias} is in illegal state.`);
      const vm = st.vmOfDisk(disk.id);
      if (vm && vm.status !== 'down' && vm.attachments.some((a) => a.diskId === disk.id && a.active)) {
        throw operationFailed(409, 'Cannot transfer Virtual Disk. At least one of the VMs is not down.');
      }
      // the engine uses the host asked for, else picks one (here: the first)
      const hostRef = refId(b, 'host');
      const host = hostRef ? st.host(hostRef) : st.firstHost();
      if (!host) throw operationFailed(400, 'Cannot transfer Virtual Disk. Host does not exist.');
      const t = ctx.transfers.create(disk, { direction, inactivityTimeout: int(b, 'inactivity_timeout') ?? 60, timeoutPolicy: policyOf, shallow: bool(b, 'shallow') ?? false, hostId: host.id });
      sendCreated(ctx, req, res, 'image_transfer', view(t));
    }),
  );

  const action = (name: string, run: (t: SimTransfer) => Promise<void> | void, allowed: (t: SimTransfer) => boolean): void => {
    r.post(
      `/imagetransfers/:id/${name}`,
      wrap((req, res) => {
        // TransferImageStatus: create_disk on the first of disk / domain / System that is set; REST sets neither
        requirePermit(ctx, res, 'create_disk', SYSTEM);
        const b = body(req);
        const t = ctx.transfers.get(String(req.params['id']));
        if (!t) throw operationFailed(404, `Entity not found: ${String(req.params['id'])}`);
        if (!allowed(t)) throw operationFailed(409, `Cannot ${name} image transfer. The transfer is in phase ${t.phase}.`);
        // the engine answers at once and moves the phase in the background
        void Promise.resolve(run(t)).catch(() => undefined);
        sendAction(req, res, b);
      }),
    );
  };
  const active = (t: SimTransfer): boolean => ['initializing', 'transferring', 'paused_user', 'paused_system', 'resuming'].includes(t.phase);
  action('finalize', (t) => ctx.transfers.finalize(t), (t) => ['transferring', 'paused_user', 'paused_system'].includes(t.phase));
  action('cancel', (t) => ctx.transfers.cancel(t, 'user'), active);
  action('pause', (t) => ctx.transfers.pause(t, 'user'), (t) => t.phase === 'transferring');
  action('resume', (t) => ctx.transfers.resume(t), (t) => t.phase === 'paused_user' || t.phase === 'paused_system');
  action('extend', () => undefined, active);

  return r;
}
