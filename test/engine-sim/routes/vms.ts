import { randomUUID } from 'crypto';
import express, { type Request, type Response, type Router } from 'express';
import { grant, hasPermit, SYSTEM } from '../access';
import { actVm, allContent, followPaths, getVm, isFiltered, requirePermit, sendAction, sendCreated, sendList, userOf, visibleVms, wrap, type SimContext } from '../context';
import { EngineFault, incomplete, notFound, operationFailed } from '../faults';
import { parseOvf, vmOvf } from '../ovf';
import { role } from '../roles';
import type { Fields } from '../search';
import type { SimAttachmentRecord, SimNicRecord, SimVmRecord } from '../state';
import { activeSnapshotView, attachmentView, backupSnapshotView, clusterView, diskView, hostView, nicView, tagView, vmView } from '../views';
import { body, bool, boolParam, int, list, obj, refId, send, str, type Wire } from '../wire';

const VM_FOLLOW = ['diskattachments', 'nics', 'tags', 'cluster', 'host', 'snapshots'];

export function vmFields(ctx: SimContext): Fields<SimVmRecord> {
  return {
    name: (v) => v.name,
    id: (v) => v.id,
    status: (v) => v.status.replace(/_/g, ''),
    description: (v) => v.description,
    comment: (v) => v.comment,
    tag: (v) => v.tagIds.map((t) => ctx.state.tag(t)?.name ?? ''),
    cluster: () => 'Default',
    datacenter: () => 'Default',
    host: (v) => (['up', 'paused'].includes(v.status) ? ctx.state.hostOfVm(v)?.name : undefined),
    os: (v) => v.osType,
    type: () => 'server',
  };
}

export function vmsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  /**
   * AddVm / ImportVm addVmPermission: the creator gets UserVmManager on the new VM unless he
   * already holds manipulate_permissions on it (through its cluster, data center or System).
   */
  const makeOwner = (res: Response, vm: SimVmRecord): void => {
    const user = userOf(res);
    if (!hasPermit(st, user, 'manipulate_permissions', { kind: 'vm', id: vm.id })) grant(st, { roleId: role('UserVmManager').id, principalId: user.id, object: { kind: 'vm', id: vm.id } });
  };

  const fullVm = (req: Request, res: Response, vm: SimVmRecord): Wire => {
    const filtered = isFiltered(req, res);
    const w = vmView(st, vm, { filtered, allContent: allContent(req) });
    for (const path of followPaths(req, VM_FOLLOW)) {
      const [head, next] = path;
      if (head === 'diskattachments') {
        const atts = vm.attachments.map((a) => {
          const aw = attachmentView(vm, a);
          const disk = st.disk(a.diskId);
          if (next === 'disk' && disk) aw['disk'] = diskView(st, disk);
          return aw;
        });
        w['disk_attachments'] = atts.length ? { disk_attachment: atts } : {};
      } else if (head === 'nics') {
        w['nics'] = vm.nics.length ? { nic: vm.nics.map((n) => nicView(st, vm, n)) } : {};
      } else if (head === 'tags') {
        const tags = vm.tagIds.map((id) => st.tag(id)).filter((t) => t !== undefined);
        w['tags'] = tags.length ? { tag: tags.map((t) => tagView(t, vm)) } : {};
      } else if (head === 'cluster') {
        w['cluster'] = clusterView(st);
      } else if (head === 'host') {
        const host = st.hostOfVm(vm);
        if (w['host'] && host) w['host'] = hostView(st, host);
      } else if (head === 'snapshots') {
        w['snapshots'] = { snapshot: [activeSnapshotView(vm, { allContent: false })] };
      }
    }
    return w;
  };

  r.get(
    '/vms',
    wrap((req, res) => {
      sendList(req, res, 'vms', 'vm', visibleVms(ctx, req, res), vmFields(ctx), (vm) => fullVm(req, res, vm));
    }),
  );

  r.get(
    '/vms/:id',
    wrap((req, res) => {
      send(req, res, 200, 'vm', fullVm(req, res, getVm(ctx, req, res, String(req.params['id']))));
    }),
  );

  r.post(
    '/vms',
    wrap((req, res) => {
      const b = body(req);
      const config = obj(obj(b, 'initialization') ?? {}, 'configuration');
      const cluster = refId(b, 'cluster') ?? (str(obj(b, 'cluster'), 'name') === 'Default' ? st.data.clusterId : undefined);
      if (config) {
        const missing = [str(config, 'type') ? '' : 'initialization.configuration.type', str(config, 'data') ? '' : 'initialization.configuration.data', obj(b, 'cluster') ? '' : 'cluster.id|name'].filter(Boolean);
        if (missing.length) throw incomplete('Vm', missing);
        // ImportVmFromConfiguration (ImportVmCommandBase, ImportVmCommand): create_vm on the cluster,
        // then import_export_vm on the source domain, which REST leaves empty: only System matches
        if (cluster) requirePermit(ctx, res, 'create_vm', { kind: 'cluster', id: cluster });
        requirePermit(ctx, res, 'import_export_vm', SYSTEM);
        if (cluster !== st.data.clusterId) throw operationFailed(400, 'Cannot import VM. Cluster does not exist.');
        const vm = importFromOvf(ctx, str(config, 'data') ?? '', { name: str(b, 'name'), regenerateIds: bool(obj(b, 'initialization'), 'regenerate_ids') ?? false });
        makeOwner(res, vm);
        sendCreated(ctx, req, res, 'vm', fullVm(req, res, vm));
        return;
      }
      const missing = [str(b, 'name') ? '' : 'name', obj(b, 'cluster') ? '' : 'cluster.id|name', obj(b, 'template') ? '' : 'template.id|name'].filter(Boolean);
      if (missing.length) throw incomplete('Vm', missing);
      // AddVmFromScratch (Blank template): create_vm on the cluster
      if (cluster) requirePermit(ctx, res, 'create_vm', { kind: 'cluster', id: cluster });
      if (cluster !== st.data.clusterId) throw operationFailed(400, 'Cannot add VM. Cluster does not exist.');
      const name = str(b, 'name') ?? '';
      if (st.data.vms.some((v) => v.name === name)) throw operationFailed(409, 'Cannot add VM. The chosen name is already in use by a VM.');
      // placement_policy.hosts pins the VM (the first host given; by id, or by name)
      const wanted = list(obj(b, 'placement_policy'), 'hosts', 'host')[0];
      const pinned = wanted ? st.hostByRef(str(wanted, 'id') ?? str(wanted, 'name') ?? '') : undefined;
      if (wanted && !pinned) throw operationFailed(400, 'Cannot add VM. Host does not exist.');
      const vm: SimVmRecord = {
        id: randomUUID(),
        name,
        description: str(b, 'description') ?? '',
        comment: str(b, 'comment') ?? '',
        status: 'down',
        memory: int(b, 'memory') ?? 1024 * 1024 * 1024,
        sockets: int(obj(obj(b, 'cpu') ?? {}, 'topology'), 'sockets') ?? 1,
        osType: str(obj(b, 'os'), 'type') ?? 'other',
        clusterId: st.data.clusterId,
        creationTime: Date.now(),
        stopTime: Date.now(),
        attachments: [],
        nics: [],
        tagIds: [],
      };
      if (pinned) vm.pinnedHostId = pinned.id;
      st.data.vms.push(vm);
      st.save();
      makeOwner(res, vm);
      sendCreated(ctx, req, res, 'vm', fullVm(req, res, vm));
    }),
  );

  r.delete(
    '/vms/:id',
    wrap(async (req, res) => {
      // BackendVmResource.remove reads the VM first (the caller's filter: 404), then RemoveVm:
      // delete_vm on the VM; its disks go with it, unchecked (internal RemoveDisk)
      const vm = getVm(ctx, req, res, String(req.params['id']));
      requirePermit(ctx, res, 'delete_vm', { kind: 'vm', id: vm.id });
      if (vm.status !== 'down') throw operationFailed(409, 'Cannot remove VM. VM is running.');
      await ctx.removeVm(vm, { detachOnly: boolParam(req, 'detach_only') ?? false });
      res.status(200).end();
    }),
  );

  // ---- actions -------------------------------------------------------------------------------

  r.post(
    '/vms/:id/start',
    wrap(async (req, res) => {
      const b = body(req);
      const vm = actVm(ctx, res, String(req.params['id']), 'run', 'run_vm');
      // RunVmValidator: not while a (cold) backup holds the VM
      if (ctx.backups.inBackup(vm.id)) throw operationFailed(409, 'Cannot run VM. The VM is during a backup operation.');
      await ctx.power.start(vm, bool(b, 'pause') ?? false);
      sendAction(req, res, b);
    }),
  );

  for (const action of ['stop', 'shutdown']) {
    r.post(
      `/vms/:id/${action}`,
      wrap(async (req, res) => {
        const b = body(req);
        const vm = actVm(ctx, res, String(req.params['id']), action, action === 'stop' ? 'stop_vm' : 'shut_down_vm');
        // StopVmCommandBase: a VM in a backup stops only with force=true
        if (ctx.backups.inBackup(vm.id) && bool(b, 'force') !== true) throw operationFailed(409, `Cannot ${action} VM. The VM is during a backup operation.`);
        await ctx.power.stop(vm, str(b, 'reason'));
        sendAction(req, res, b);
      }),
    );
  }

  // ---- nics ----------------------------------------------------------------------------------

  r.get(
    '/vms/:id/nics',
    wrap((req, res) => {
      const vm = st.vm(String(req.params['id']));
      const nics = vm && visibleVms(ctx, req, res).includes(vm) ? vm.nics.map((n) => nicView(st, vm, n)) : [];
      send(req, res, 200, 'nics', nics.length ? { nic: nics } : {});
    }),
  );

  r.get(
    '/vms/:id/nics/:nicId',
    wrap((req, res) => {
      const vm = getVm(ctx, req, res, String(req.params['id']));
      const n = vm.nics.find((x) => x.id === req.params['nicId']);
      if (!n) throw notFound();
      send(req, res, 200, 'nic', nicView(st, vm, n));
    }),
  );

  r.post(
    '/vms/:id/nics',
    wrap((req, res) => {
      const b = body(req);
      const vm = actVm(ctx, res, String(req.params['id']), 'add', 'configure_vm_network');
      const name = str(b, 'name');
      if (!name) throw incomplete('Nic', ['name']);
      if (vm.nics.some((n) => n.name === name)) throw operationFailed(409, 'Cannot add Interface. The VM already has an interface with that name.');
      const mac = str(obj(b, 'mac'), 'address') ?? st.nextMac();
      const user = st.data.vms.find((v) => v.nics.some((n) => n.mac === mac));
      if (user) throw operationFailed(409, `Cannot add Interface. MAC Address ${mac} is already in use.`);
      const nic: SimNicRecord = {
        id: randomUUID(),
        name,
        interface: (str(b, 'interface') ?? 'virtio') as SimNicRecord['interface'],
        mac,
        linked: bool(b, 'linked') ?? true,
        plugged: bool(b, 'plugged') ?? true,
      };
      vm.nics.push(nic);
      st.save();
      sendCreated(ctx, req, res, 'nic', nicView(st, vm, nic));
    }),
  );

  // ---- tags ----------------------------------------------------------------------------------

  r.get(
    '/vms/:id/tags',
    wrap((req, res) => {
      const vm = st.vm(String(req.params['id']));
      const tags = vm && visibleVms(ctx, req, res).includes(vm) ? vm.tagIds.map((id) => st.tag(id)).filter((t) => t !== undefined) : [];
      send(req, res, 200, 'tags', tags.length && vm ? { tag: tags.map((t) => tagView(t, vm)) } : {});
    }),
  );

  r.post(
    '/vms/:id/tags',
    wrap((req, res) => {
      const b = body(req);
      // AttachVmsToTag (TagsCommandBase): tag_management on System, then the VM must exist
      requirePermit(ctx, res, 'tag_management', SYSTEM);
      const vm = st.vm(String(req.params['id']));
      if (!vm) throw operationFailed(400, 'Cannot attach Tag. VM not found');
      const id = str(b, 'id');
      const name = str(b, 'name');
      if (!id && !name) throw incomplete('Tag', ['id|name']);
      const tag = id ? st.tag(id) : st.data.tags.find((t) => t.name === name);
      if (!tag) throw notFound();
      if (!vm.tagIds.includes(tag.id)) vm.tagIds.push(tag.id);
      st.save();
      sendCreated(ctx, req, res, 'tag', tagView(tag, vm));
    }),
  );

  r.delete(
    '/vms/:id/tags/:tagId',
    wrap((req, res) => {
      requirePermit(ctx, res, 'tag_management', SYSTEM); // DetachVmFromTag (TagsCommandBase)
      const vm = st.vm(String(req.params['id']));
      if (!vm || !vm.tagIds.includes(String(req.params['tagId']))) throw notFound();
      vm.tagIds = vm.tagIds.filter((t) => t !== req.params['tagId']);
      st.save();
      res.status(200).end();
    }),
  );

  // ---- snapshots (read-only views; backups and checkpoints: backups.ts) ----------------------

  r.get(
    '/vms/:id/snapshots',
    wrap((req, res) => {
      const vm = st.vm(String(req.params['id']));
      if (!vm || !visibleVms(ctx, req, res).includes(vm)) {
        send(req, res, 200, 'snapshots', {});
        return;
      }
      const all = allContent(req);
      // a hybrid backup's snapshot, while it lasts (HybridBackupCommand's description)
      const backupSnapshots = ctx.backups.snapshotsOf(vm.id).map((x) => backupSnapshotView(vm, x));
      send(req, res, 200, 'snapshots', { snapshot: [...backupSnapshots, activeSnapshotView(vm, { allContent: all, ovf: all ? vmOvf(st, vm) : undefined })] });
    }),
  );

  for (const sub of ['cdroms', 'statistics']) {
    r.get(
      `/vms/:id/${sub}`,
      wrap((req, res) => {
        send(req, res, 200, sub, {});
      }),
    );
  }

  return r;
}

/**
 * ImportVmFromConfiguration, synchronous as the engine runs it for backup applications
 * (reference §7.2): the OVF's disk list is emptied and each disk then attached by id if it
 * exists (failures only make an event); NIC MACs kept unless regenerate_ids.
 */
function importFromOvf(ctx: SimContext, xml: string, o: { name?: string; regenerateIds: boolean }): SimVmRecord {
  const st = ctx.state;
  let ovf;
  try {
    ovf = parseOvf(xml);
  } catch (err) {
    throw operationFailed(400, `Cannot import VM. Failed to parse the OVF configuration: ${(err as Error).message}`);
  }
  const id = o.regenerateIds || !ovf.vmId ? randomUUID() : ovf.vmId;
  const name = o.name ?? ovf.name;
  if (!name) throw new EngineFault(400, 'Incomplete parameters', 'Vm [name] required for add');
  if (st.vm(id)) throw operationFailed(400, `Import VM failed - VM Id already exist in the system. Please remove the VM (${st.vm(id)?.name ?? ''}) from the system first`);
  if (st.data.vms.some((v) => v.name === name)) throw operationFailed(400, 'Import VM failed - VM Name already exist in the system. Please rename the VM in the system first');
  const usedMacs = new Set(st.data.vms.flatMap((v) => v.nics.map((n) => n.mac)));
  const nics: SimNicRecord[] = ovf.nics.map((n) => ({ id: randomUUID(), name: n.name, interface: n.interface as SimNicRecord['interface'], mac: o.regenerateIds || !n.mac ? st.nextMac() : n.mac, linked: n.linked, plugged: n.plugged }));
  const dup = nics.filter((n) => usedMacs.has(n.mac)).map((n) => n.mac);
  if (dup.length) throw operationFailed(409, `Cannot import VM. Cannot add Interface: the following MAC addresses are already in use: ${dup.join(', ')}.`);
  const vm: SimVmRecord = {
    id,
    name,
    description: ovf.description,
    comment: ovf.comment,
    status: 'down',
    memory: (ovf.memoryMiB ?? 1024) * 1024 * 1024,
    sockets: ovf.sockets ?? 1,
    osType: ovf.osType ?? 'other',
    clusterId: st.data.clusterId,
    creationTime: Date.now(),
    stopTime: Date.now(),
    attachments: [],
    nics,
    tagIds: [],
  };
  const failed: string[] = [];
  for (const d of ovf.disks) {
    const disk = st.disk(d.diskId);
    if (!disk || st.vmOfDisk(disk.id)) {
      failed.push(d.diskId);
      continue;
    }
    vm.attachments.push({ diskId: disk.id, interface: d.interface as SimAttachmentRecord['interface'], bootable: d.bootable, active: d.plugged, passDiscard: d.passDiscard, readOnly: d.readOnly });
  }
  st.data.vms.push(vm);
  st.save();
  st.addEvent({ code: 9600, severity: 'normal', description: `VM ${name} was imported from the given configuration.`, origin: 'oVirt', vmId: vm.id });
  if (failed.length) {
    st.addEvent({ code: 9601, severity: 'warning', description: `VM ${name} was imported from the given configuration, but the following disks could not be attached: ${failed.join(', ')}.`, origin: 'oVirt', vmId: vm.id });
  }
  return vm;
}

