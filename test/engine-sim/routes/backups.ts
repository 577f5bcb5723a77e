import express, { type Router } from 'express';
import { getVm, requirePermit, sendAction, sendCreated, userOf, visibleVms, wrap, type SimContext } from '../context';
import { incomplete, notFound, operationFailed } from '../faults';
import type { SimBackupRecord, SimCheckpointRecord, SimDiskRecord, SimVmRecord } from '../state';
import { diskView } from '../views';
import { API, body, boolParam, clean, collection, list, links, ref, send, str, type Wire } from '../wire';

/**
 * The engine's backup API (reference §4): `/vms/{id}/backups` (StartVmBackup, or HybridBackup
 * on a cluster >= 4.7 unless `legacy=true`), a backup's disks with their
 * backup_mode, finalize (StopVmBackup), and `/vms/{id}/checkpoints` with the asynchronous
 * DeleteVmCheckpoint. Validation follows StartVmBackupCommand.validate in its order, with the
 * messages of the engine's AppErrors (action "backup", type "VM").
 */

const BACKUP = 'Cannot backup VM.';
const MAX_DESCRIPTION = 1024;

export function backupsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;
  const bk = ctx.backups;

  const backupView = (b: SimBackupRecord): Wire => {
    const base = `${API}/vms/${b.vmId}/backups/${b.id}`;
    const taken = b.phase === 'ready' || b.phase === 'finalizing' || b.phase === 'succeeded';
    return clean({
      href: base,
      id: b.id,
      actions: { link: [{ href: `${base}/finalize`, rel: 'finalize' }] },
      link: links(base, ['disks']),
      creation_date: b.creationDate,
      description: b.description,
      from_checkpoint_id: b.fromCheckpointId,
      modification_date: b.modificationDate,
      phase: b.phase,
      to_checkpoint_id: taken ? b.toCheckpointId : undefined,
      host: ref('hosts', b.hostId),
      snapshot: b.snapshotId ? ref(`vms/${b.vmId}/snapshots`, b.snapshotId) : undefined,
      vm: ref('vms', b.vmId),
    });
  };

  const checkpointView = (c: SimCheckpointRecord): Wire => {
    const base = `${API}/vms/${c.vmId}/checkpoints/${c.id}`;
    return clean({ href: base, id: c.id, link: links(base, ['disks']), creation_date: c.creationDate, parent_id: c.parentId, state: c.state, vm: ref('vms', c.vmId) });
  };

  const diskList = (ids: Array<{ diskId: string; backupMode?: string }>): Wire[] =>
    ids.flatMap(({ diskId, backupMode }) => {
      const d = st.disk(diskId);
      return d ? [clean({ ...diskView(st, d), backup_mode: backupMode })] : [];
    });

  /** A sub-collection of a VM the caller may not see (or that does not exist) is empty. */
  const seenVm = (req: express.Request, res: express.Response): SimVmRecord | undefined => {
    const vm = st.vm(String(req.params['id']));
    return vm && visibleVms(ctx, req, res).includes(vm) ? vm : undefined;
  };

  r.get(
    '/vms/:id/backups',
    wrap((req, res) => {
      const vm = seenVm(req, res);
      send(req, res, 200, 'backups', collection('backup', vm ? bk.ofVm(vm.id).map(backupView) : []));
    }),
  );

  r.get(
    '/vms/:id/backups/:bid',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const b = bk.get(String(req.params['bid']));
      if (!b || b.vmId !== vm.id) throw notFound();
      send(req, res, 200, 'backup', backupView(b));
    }),
  );

  r.get(
    '/vms/:id/backups/:bid/disks',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const b = bk.get(String(req.params['bid']));
      if (!b || b.vmId !== vm.id) throw notFound();
      send(req, res, 200, 'disks', collection('disk', diskList(b.disks)));
    }),
  );

  r.post(
    '/vms/:id/backups',
    wrap((req, res) => {
      const b = body(req);
      // BackendVmBackupsResource.add reads the VM first (the caller's filter: 404 when unseen)
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const wanted = list(b, 'disks', 'disk').map((d) => str(d, 'id') ?? '');
      if (wanted.length === 0) throw incomplete('Backup', ['disks']);
      // StartVmBackup's permission subjects: backup_disk on the VM and on each disk
      requirePermit(ctx, res, 'backup_disk', { kind: 'vm', id: vm.id });
      for (const id of wanted) requirePermit(ctx, res, 'backup_disk', { kind: 'disk', id });
      const disks = validate(vm, wanted, str(b, 'from_checkpoint_id'), str(b, 'description'), str(b, 'id'));
      const host = st.hostOfVm(vm) ?? st.firstHost();
      const user = userOf(res);
      // BackendVmBackupsResource.add: HybridBackup when the cluster enables it and `legacy` is not set
      const [major = 0, minor = 0] = st.data.clusterVersion.split('.').map(Number);
      const hybrid = (major > 4 || (major === 4 && minor >= 7)) && !(boolParam(req, 'legacy') ?? false);
      // ...and HybridBackup gets its parameters without require_consistency: its snapshot's freeze
      // may fail and the backup goes on (only StartVmBackup honours it)
      const requireConsistency = !hybrid && (boolParam(req, 'require_consistency') ?? false);
      const backup = bk.start(vm, { id: str(b, 'id'), disks, fromCheckpointId: str(b, 'from_checkpoint_id'), description: str(b, 'description'), requireConsistency, hostId: host.id, userName: user.userName, hybrid });
      sendCreated(ctx, req, res, 'backup', backupView(backup));
    }),
  );

  /** StartVmBackupCommand.validate, in its order. */
  const validate = (vm: SimVmRecord, ids: string[], fromId: string | undefined, description: string | undefined, id: string | undefined): SimDiskRecord[] => {
    const missing = ids.filter((x) => !st.disk(x));
    if (missing.length > 0) throw operationFailed(400, `${BACKUP} The following disk(s) ID(s) does not exist: ${missing.join(', ')}.`);
    const disks = ids.map((x) => st.disk(x)).filter((d): d is SimDiskRecord => d !== undefined);
    const locked = disks.filter((d) => d.status === 'locked').map((d) => d.alias);
    if (locked.length > 0) throw operationFailed(409, `Cannot backup VM: The following disks are locked: ${locked.join(', ')}. Please try again in a few minutes.`);
    const notAttached = disks.filter((d) => !vm.attachments.some((a) => a.diskId === d.id)).map((d) => d.alias);
    if (notAttached.length > 0) throw operationFailed(400, `${BACKUP} The following disk(s) are not attached to the VM ${vm.name}: ${notAttached.join(', ')}.`);
    const inactive = disks.filter((d) => !vm.attachments.some((a) => a.diskId === d.id && a.active)).map((d) => d.id);
    if (inactive.length > 0) throw operationFailed(409, `${BACKUP} The following disks are not active on VM ${vm.name}: ${inactive.join(', ')}`);
    if (fromId !== undefined) {
      const from = bk.checkpoint(fromId);
      if (!from || from.vmId !== vm.id) throw operationFailed(400, `${BACKUP} Checkpoint ID ${fromId} doesn't exist.`);
      if (from.state === 'invalid') throw operationFailed(400, `${BACKUP} Checkpoint ID ${fromId} is invalid and should be removed.`);
      // cluster >= 4.5: disks outside the checkpoint are backed up full, no "mixed" refusal
    }
    if (vm.status !== 'up' && vm.status !== 'down') throw operationFailed(409, `${BACKUP} The Virtual Machine should be in Up or Down status.`);
    if (bk.inBackup(vm.id)) throw operationFailed(409, `${BACKUP} The VM is during a backup operation.`);
    if (bk.removingCheckpoint(vm.id)) throw operationFailed(409, `${BACKUP} The VM is during a checkpoint removal operation.`);
    if (description !== undefined && description.length > MAX_DESCRIPTION) throw operationFailed(400, `${BACKUP} The VM backup description shouldn't contain more than 1024 characters.`);
    if (id !== undefined && st.data.backups.some((x) => x.id === id)) throw operationFailed(400, `${BACKUP} The specified VM backup ID ${id} already exists.`);
    return disks;
  };

  r.post(
    '/vms/:id/backups/:bid/finalize',
    wrap((req, res) => {
      const b = body(req);
      // StopVmBackup: backup_disk on the VM (and its disks), then the transfers must be done
      requirePermit(ctx, res, 'backup_disk', { kind: 'vm', id: String(req.params['id']) });
      const backup = bk.get(String(req.params['bid']));
      if (!backup || backup.vmId !== req.params['id']) throw operationFailed(400, 'Cannot stop VM backup. The specified VM backup does not exist.');
      for (const d of backup.disks) requirePermit(ctx, res, 'backup_disk', { kind: 'disk', id: d.diskId });
      const live = ctx.transfers.list().filter((t) => t.backupId === backup.id && !t.phase.startsWith('finished'));
      if (live.length > 0) throw operationFailed(409, 'Cannot stop VM backup. There is an active image transfer for VM backup');
      // the engine answers at once and moves the phase in the background
      void bk.finalize(backup, userOf(res).userName).catch(() => undefined);
      sendAction(req, res, b);
    }),
  );

  r.get(
    '/vms/:id/checkpoints',
    wrap((req, res) => {
      const vm = seenVm(req, res);
      send(req, res, 200, 'checkpoints', collection('checkpoint', vm ? bk.checkpointsOf(vm.id).map(checkpointView) : []));
    }),
  );

  r.get(
    '/vms/:id/checkpoints/:cid',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const c = bk.checkpoint(String(req.params['cid']));
      if (!c || c.vmId !== vm.id) throw notFound();
      send(req, res, 200, 'checkpoint', checkpointView(c));
    }),
  );

  r.get(
    '/vms/:id/checkpoints/:cid/disks',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const c = bk.checkpoint(String(req.params['cid']));
      if (!c || c.vmId !== vm.id) throw notFound();
      send(req, res, 200, 'disks', collection('disk', diskList(c.diskIds.map((diskId) => ({ diskId })))));
    }),
  );

  r.delete(
    '/vms/:id/checkpoints/:cid',
    wrap((req, res) => {
      // BackendVmCheckpointResource.remove reads it first (404), then DeleteVmCheckpoint
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const c = bk.checkpoint(String(req.params['cid']));
      if (!c || c.vmId !== vm.id) throw notFound();
      requirePermit(ctx, res, 'backup_disk', { kind: 'vm', id: vm.id });
      if (bk.inBackup(vm.id) || bk.removingCheckpoint(vm.id)) throw operationFailed(409, 'Cannot remove checkpoint. The VM is during a backup operation.');
      const locked = c.diskIds.map((x) => st.disk(x)).filter((d) => d?.status === 'locked').map((d) => d?.alias ?? '');
      if (locked.length > 0) throw operationFailed(409, `Cannot remove checkpoint: The following disks are locked: ${locked.join(', ')}. Please try again in a few minutes.`);
      bk.removeCheckpoint(c, userOf(res).userName);
      res.status(200).end();
    }),
  );

  return r;
}
