import { statfsSync, statSync } from 'fs';
import { vmOvf } from './ovf';
import { BLANK_TEMPLATE_ID, ROOT_TAG_ID, type SimAttachmentRecord, type SimDiskRecord, type SimEvent, type SimHostRecord, type SimNicRecord, type SimState, type SimStorageDomainRecord, type SimTagRecord, type SimVmRecord } from './state';
import { API, clean, links, ref, s, type Wire } from './wire';

/**
 * Entity -> wire, field sets from the API model (reference §2-§3, §5, §9), typed as the JSON
 * provider writes them: booleans/ints/longs as strings, dates as epoch ms, unset = absent.
 */

export const ENGINE_VERSION = { major: 4, minor: 5, build: 4, revision: 0, full: '4.5.4-1.el8' };
/** The cluster's compatibility version as the API shows it. */
export const clusterVersion = (state: SimState): Wire => {
  const [major, minor] = state.data.clusterVersion.split('.');
  return { major: major ?? '4', minor: minor ?? '6' };
};

const VM_RUNNING = new Set(['up', 'paused', 'powering_down', 'wait_for_launch']);

export function vmView(state: SimState, vm: SimVmRecord, o: { filtered: boolean; allContent: boolean }): Wire {
  const base = `${API}/vms/${vm.id}`;
  const running = VM_RUNNING.has(vm.status);
  return clean({
    href: base,
    id: vm.id,
    name: vm.name,
    description: vm.description,
    comment: vm.comment,
    actions: {
      link: ['cancelmigration', 'commitsnapshot', 'clone', 'detach', 'export', 'freezefilesystems', 'logon', 'maintenance', 'migrate', 'previewsnapshot', 'reboot', 'reordermacaddresses', 'shutdown', 'start', 'stop', 'suspend', 'thawfilesystems', 'undosnapshot'].map(
        (rel) => ({ href: `${base}/${rel}`, rel }),
      ),
    },
    link: links(base, ['affinitylabels', 'applications', 'backups', 'cdroms', 'checkpoints', 'diskattachments', 'graphicsconsoles', 'hostdevices', 'katelloerrata', 'mediateddevices', 'nics', 'numanodes', 'permissions', 'reporteddevices', 'sessions', 'snapshots', 'statistics', 'tags', 'watchdogs']),
    bios: { boot_menu: { enabled: 'false' }, type: 'q35_sea_bios' },
    cpu: { architecture: 'x86_64', topology: { cores: '1', sockets: s(vm.sockets), threads: '1' } },
    cpu_shares: '0',
    creation_time: vm.creationTime,
    delete_protected: 'false',
    display: { type: 'vnc' },
    high_availability: { enabled: 'false', priority: '0' },
    initialization: o.allContent ? { configuration: { data: vmOvf(state, vm), type: 'ovf' } } : undefined,
    io: { threads: '1' },
    large_icon: ref('icons', '9cb1a7d6-0a85-4a46-b5c1-e8d2ce65e79e'),
    memory: s(vm.memory),
    memory_policy: { guaranteed: s(vm.memory), max: s(vm.memory * 4) },
    migration: { auto_converge: 'inherit', compressed: 'inherit', encrypted: 'inherit' },
    origin: 'ovirt',
    os: { boot: { devices: { device: ['hd'] } }, type: vm.osType },
    placement_policy: o.filtered ? undefined : clean({ affinity: 'migratable', hosts: vm.pinnedHostId ? { host: [ref('hosts', vm.pinnedHostId)] } : undefined }),
    small_icon: ref('icons', '3b0e8b0b-3a0c-4dd3-a0d9-8c6c4d8e0f4b'),
    sso: { methods: { method: [{ id: 'guest_agent' }] } },
    start_paused: 'false',
    stateless: 'false',
    storage_error_resume_behaviour: 'auto_resume',
    time_zone: { name: 'Etc/GMT' },
    type: 'server',
    usb: { enabled: 'false' },
    cluster: ref('clusters', vm.clusterId),
    cpu_profile: ref('cpuprofiles', state.data.cpuProfileId),
    quota: ref('quotas', state.data.dataCenterId),
    next_run_configuration_exists: 'false',
    numa_tune_mode: 'interleave',
    run_once: 'false',
    start_time: running ? vm.startTime : undefined,
    stop_time: running ? undefined : vm.stopTime,
    stop_reason: running ? undefined : vm.stopReason,
    status: vm.status,
    host: running && !o.filtered && vm.runOnHostId ? ref('hosts', vm.runOnHostId) : undefined,
    original_template: ref('templates', BLANK_TEMPLATE_ID),
    template: ref('templates', BLANK_TEMPLATE_ID),
    has_illegal_images: s(vm.attachments.some((a) => state.disk(a.diskId)?.status === 'illegal')),
  });
}

export function attachmentView(vm: SimVmRecord, a: SimAttachmentRecord): Wire {
  return {
    href: `${API}/vms/${vm.id}/diskattachments/${a.diskId}`,
    id: a.diskId,
    active: s(a.active),
    bootable: s(a.bootable),
    interface: a.interface,
    pass_discard: s(a.passDiscard),
    read_only: s(a.readOnly),
    uses_scsi_reservation: 'false',
    disk: ref('disks', a.diskId),
    vm: ref('vms', vm.id),
  };
}

export function diskView(state: SimState, d: SimDiskRecord): Wire {
  const base = `${API}/disks/${d.id}`;
  let actual = 0;
  try {
    actual = statSync(state.abs(d.file)).blocks * 512;
  } catch {
    actual = 0;
  }
  return clean({
    href: base,
    id: d.id,
    name: d.alias,
    description: d.description,
    actions: { link: ['convert', 'copy', 'export', 'move', 'reduce', 'refreshlun', 'sparsify'].map((rel) => ({ href: `${base}/${rel}`, rel })) },
    link: links(base, ['disksnapshots', 'permissions', 'statistics']),
    actual_size: s(actual),
    alias: d.alias,
    backup: d.backup,
    content_type: 'data',
    format: d.format,
    image_id: d.imageId,
    propagate_errors: 'false',
    provisioned_size: s(d.provisionedSize),
    qcow_version: d.format === 'cow' ? 'qcow2_v3' : undefined,
    shareable: 'false',
    sparse: s(d.sparse),
    status: d.status,
    storage_type: 'image',
    total_size: s(actual),
    wipe_after_delete: 'false',
    disk_profile: ref('diskprofiles', d.storageDomainId),
    quota: ref('quotas', state.data.dataCenterId),
    storage_domains: { storage_domain: [ref('storagedomains', d.storageDomainId)] },
  });
}

export function nicView(state: SimState, vm: SimVmRecord, n: SimNicRecord): Wire {
  const base = `${API}/vms/${vm.id}/nics/${n.id}`;
  return {
    href: base,
    id: n.id,
    name: n.name,
    actions: { link: [{ href: `${base}/deactivate`, rel: 'deactivate' }, { href: `${base}/activate`, rel: 'activate' }] },
    link: links(base, ['networkfilterparameters', 'reporteddevices', 'statistics']),
    interface: n.interface,
    linked: s(n.linked),
    mac: { address: n.mac },
    plugged: s(n.plugged),
    synced: 'true',
    vnic_profile: ref('vnicprofiles', state.data.vnicProfileId),
    vm: ref('vms', vm.id),
  };
}

export function tagView(t: SimTagRecord | 'root', vm?: SimVmRecord): Wire {
  if (t === 'root') return { href: `${API}/tags/${ROOT_TAG_ID}`, id: ROOT_TAG_ID, name: 'root', description: 'root' };
  return clean({
    href: vm ? `${API}/vms/${vm.id}/tags/${t.id}` : `${API}/tags/${t.id}`,
    id: t.id,
    name: t.name,
    description: t.description,
    parent: ref('tags', t.parentId),
    vm: vm ? ref('vms', vm.id) : undefined,
  });
}

export function hostView(state: SimState, h: SimHostRecord): Wire {
  const d = state.data;
  const base = `${API}/hosts/${h.id}`;
  const active = String(state.vmsOnHost(h.id).length);
  return {
    href: base,
    id: h.id,
    name: h.name,
    comment: '',
    link: links(base, ['affinitylabels', 'devices', 'fenceagents', 'hooks', 'katelloerrata', 'networkattachments', 'nics', 'numanodes', 'permissions', 'statistics', 'storage', 'storageconnectionextensions', 'tags', 'unmanagednetworks']),
    address: '127.0.0.1',
    auto_numa_status: 'unknown',
    certificate: { organization: 'sim.local', subject: 'O=sim.local,CN=127.0.0.1' },
    cpu: { name: 'QEMU TCG', speed: '2000', topology: { cores: '1', sockets: '2', threads: '1' }, type: 'Intel Nehalem Family' },
    hardware_information: { uuid: h.hwId, manufacturer: 'QEMU', product_name: 'Standard PC (Q35 + ICH9, 2009)' },
    kdump_status: 'disabled',
    libvirt_version: { build: '0', full_version: 'libvirt-8.0.0', major: '8', minor: '0', revision: '0' },
    max_scheduling_memory: '8589934592',
    memory: '8589934592',
    os: { type: 'RHEL', version: { full_version: '8.8', major: '8', minor: '8' } },
    port: '54321',
    protocol: 'stomp',
    status: 'up',
    summary: { active, migrating: '0', total: active },
    type: 'rhel',
    update_available: 'false',
    version: { build: '0', full_version: 'vdsm-4.50.3.4-1.el8', major: '4', minor: '50', revision: '3' },
    cluster: ref('clusters', d.clusterId),
  };
}

export function clusterView(state: SimState): Wire {
  const d = state.data;
  const base = `${API}/clusters/${d.clusterId}`;
  return {
    href: base,
    id: d.clusterId,
    name: 'Default',
    description: 'The default server cluster',
    comment: '',
    link: links(base, ['affinitygroups', 'cpuprofiles', 'enabledfeatures', 'externalnetworkproviders', 'glustervolumes', 'networkfilters', 'networks', 'permissions']),
    ballooning_enabled: 'true',
    bios_type: 'q35_sea_bios',
    cpu: { architecture: 'x86_64', type: 'Intel Nehalem Family' },
    firewall_type: 'firewalld',
    ha_reservation: 'false',
    memory_policy: { over_commit: { percent: '100' } },
    switch_type: 'legacy',
    threads_as_cores: 'false',
    version: clusterVersion(state),
    virt_service: 'true',
    data_center: ref('datacenters', d.dataCenterId),
    mac_pool: ref('macpools', d.macPoolId),
    scheduling_policy: ref('schedulingpolicies', '5a2b0939-7d46-4b73-a469-e9c2c7fc6a53'),
  };
}

export function dataCenterView(state: SimState): Wire {
  const d = state.data;
  const base = `${API}/datacenters/${d.dataCenterId}`;
  return {
    href: base,
    id: d.dataCenterId,
    name: 'Default',
    description: 'The default Data Center',
    comment: '',
    link: links(base, ['clusters', 'iscsibonds', 'networks', 'permissions', 'qoss', 'quotas', 'storagedomains']),
    local: 'false',
    quota_mode: 'disabled',
    status: 'up',
    storage_format: 'v5',
    supported_versions: { version: [clusterVersion(state)] },
    version: clusterVersion(state),
    mac_pool: ref('macpools', d.macPoolId),
  };
}

/** `inDataCenter`: the view under /datacenters/{id}/storagedomains, the only one with a status. */
export function storageDomainView(state: SimState, sd: SimStorageDomainRecord, inDataCenter = false): Wire {
  const base = inDataCenter ? `${API}/datacenters/${state.data.dataCenterId}/storagedomains/${sd.id}` : `${API}/storagedomains/${sd.id}`;
  let available = 0;
  let used = 0;
  try {
    const fsStat = statfsSync(state.abs(sd.dir));
    available = fsStat.bavail * fsStat.bsize;
    used = (fsStat.blocks - fsStat.bfree) * fsStat.bsize;
  } catch {
    // the directory is gone: report zeros
  }
  const committed = state.data.disks.filter((dk) => dk.storageDomainId === sd.id).reduce((n, dk) => n + dk.provisionedSize, 0);
  return clean({
    href: base,
    id: sd.id,
    name: sd.name,
    description: '',
    comment: '',
    link: inDataCenter ? undefined : links(base, ['diskprofiles', 'disksnapshots', 'disks', 'files', 'images', 'permissions', 'storageconnections', 'templates', 'vms']),
    available: s(available),
    backup: 'false',
    block_size: '512',
    committed: s(committed),
    critical_space_action_blocker: '5',
    discard_after_delete: 'false',
    external_status: 'ok',
    master: s(sd === state.data.storageDomains[0]),
    status: inDataCenter ? 'active' : undefined,
    storage: { type: 'localfs', path: state.abs(sd.dir) },
    storage_format: 'v5',
    supports_discard: 'true',
    supports_discard_zeroes_data: 'false',
    type: 'data',
    used: s(used),
    warning_low_space_indicator: '10',
    wipe_after_delete: 'false',
    data_centers: { data_center: [ref('datacenters', state.data.dataCenterId)] },
    data_center: inDataCenter ? ref('datacenters', state.data.dataCenterId) : undefined,
  });
}

/** The Blank template (data/01100_insert_vm_static.sql), the only one the simulator has. */
export function templateView(): Wire {
  const base = `${API}/templates/${BLANK_TEMPLATE_ID}`;
  return {
    href: base,
    id: BLANK_TEMPLATE_ID,
    name: 'Blank',
    description: 'Blank template',
    comment: '',
    link: links(base, ['cdroms', 'diskattachments', 'graphicsconsoles', 'nics', 'permissions', 'tags', 'watchdogs']),
    cpu: { architecture: 'undefined', topology: { cores: '1', sockets: '1', threads: '1' } },
    creation_time: Date.UTC(2008, 3, 1),
    memory: '1073741824',
    os: { boot: { devices: { device: ['hd'] } }, type: 'other' },
    stateless: 'false',
    type: 'server',
    status: 'ok',
    version: { version_name: 'base version', version_number: '1' },
  };
}

export function eventView(e: SimEvent): Wire {
  return clean({
    href: `${API}/events/${e.index}`,
    id: String(e.index),
    description: e.description,
    comment: undefined,
    code: s(e.code),
    correlation_id: e.correlationId,
    custom_id: e.customId === undefined ? undefined : s(e.customId),
    flood_rate: e.floodRate === undefined ? undefined : s(e.floodRate),
    index: s(e.index),
    origin: e.origin,
    severity: e.severity,
    time: e.time,
    cluster: e.clusterId ? ref('clusters', e.clusterId) : undefined,
    data_center: e.dataCenterId ? ref('datacenters', e.dataCenterId) : undefined,
    host: e.hostId ? ref('hosts', e.hostId) : undefined,
    storage_domain: e.storageDomainId ? ref('storagedomains', e.storageDomainId) : undefined,
    template: e.templateId ? ref('templates', e.templateId) : undefined,
    user: e.userId ? ref('users', e.userId) : undefined,
    vm: e.vmId ? ref('vms', e.vmId) : undefined,
  });
}

/** The one snapshot every VM has: the active one. */
export function activeSnapshotView(vm: SimVmRecord, o: { allContent: boolean; ovf?: string }): Wire {
  const id = `${vm.id.slice(0, 24)}${'a'.repeat(12)}`;
  const base = `${API}/vms/${vm.id}/snapshots/${id}`;
  return clean({
    href: base,
    id,
    description: 'Active VM',
    link: links(base, ['disks', 'nics', 'cdroms']),
    date: vm.creationTime,
    persist_memorystate: 'false',
    snapshot_status: 'ok',
    snapshot_type: 'active',
    initialization: o.allContent && o.ovf ? { configuration: { data: o.ovf, type: 'ovf' } } : undefined,
    vm: ref('vms', vm.id),
  });
}

export function vnicProfileView(state: SimState): Wire {
  const base = `${API}/vnicprofiles/${state.data.vnicProfileId}`;
  return {
    href: base,
    id: state.data.vnicProfileId,
    name: 'ovirtmgmt',
    link: links(base, ['permissions']),
    pass_through: { mode: 'disabled' },
    port_mirroring: 'false',
    network: ref('networks', state.data.networkId),
    network_filter: ref('networkfilters', 'd2370ab4-fee3-11e9-a310-8c1645ce738e'),
  };
}

export function networkView(state: SimState): Wire {
  const base = `${API}/networks/${state.data.networkId}`;
  return {
    href: base,
    id: state.data.networkId,
    name: 'ovirtmgmt',
    description: 'Management Network',
    link: links(base, ['networklabels', 'permissions', 'vnicprofiles']),
    mtu: '0',
    stp: 'false',
    usages: { usage: ['vm', 'management'] },
    vdsm_name: 'ovirtmgmt',
    data_center: ref('datacenters', state.data.dataCenterId),
  };
}

/** The snapshot a hybrid backup takes ("Auto-generated for Backup VM"), while the backup lasts. */
export function backupSnapshotView(vm: SimVmRecord, snap: { id: string; date: number }): Wire {
  const base = `${API}/vms/${vm.id}/snapshots/${snap.id}`;
  return { href: base, id: snap.id, description: 'Auto-generated for Backup VM', link: links(base, ['disks', 'nics', 'cdroms']), date: snap.date, persist_memorystate: 'false', snapshot_status: 'ok', snapshot_type: 'regular', vm: ref('vms', vm.id) };
}
