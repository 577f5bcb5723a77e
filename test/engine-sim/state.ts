import { randomUUID } from 'crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'fs';
import * as path from 'path';
import { migrateState } from './migrate';

/**
 * The engine's database, as far as the simulator needs one: plain records, saved as JSON in the
 * data dir after every change, so a simulator restarted on the same dir (the demo) finds its VMs,
 * disks, tags, events and user passwords again. Processes (QEMU, qemu-nbd), tokens and image
 * transfers are not persisted: a restart is like an engine restart, sessions and transfers gone.
 */

export type VmStatus = 'up' | 'down' | 'paused' | 'wait_for_launch' | 'powering_down';
export type DiskFormat = 'cow' | 'raw';
export type DiskStatus = 'ok' | 'locked' | 'illegal';
export type Severity = 'normal' | 'warning' | 'error' | 'alert';

export interface SimUserRecord {
  id: string;
  name: string; // 'admin'
  userName: string; // 'admin@internal'
  password: string;
  /** the user's id in the directory (aaa-jdbc), what `domain_entry_id` encodes */
  externalId: string;
  /** engine ids of the directory groups the user is a member of (Everyone is implicit) */
  groupIds: string[];
}

/**
 * A directory group imported into the engine (table ad_groups): the engine's own id, and the
 * directory's (`external_id`, shown hex-encoded as `domain_entry_id`). Everyone is one, built in,
 * with no directory (data/00200_insert_ad_groups.sql).
 */
export interface SimGroupRecord {
  id: string;
  name: string;
  externalId: string;
  /** authz name ('internal-authz'); '' for Everyone */
  domain: string;
}

/** What a permission is granted on (VdcObjectType); ids are unique across kinds, as in the engine. */
export type SimObjectKind = 'system' | 'datacenter' | 'cluster' | 'host' | 'storagedomain' | 'vm' | 'disk' | 'template' | 'user' | 'vnicprofile' | 'macpool' | 'cpuprofile';

/** One row of the engine's `permissions` table: a role granted to a user or group on an object. */
export interface SimPermissionRecord {
  id: string;
  roleId: string;
  /** ad_element_id: a user's or a group's id */
  principalId: string;
  objectKind: SimObjectKind;
  objectId: string;
  /** seconds since the epoch, as the engine stores creation_date */
  creationDate: number;
}

export interface SimDiskRecord {
  id: string;
  imageId: string;
  alias: string;
  description: string;
  format: DiskFormat;
  sparse: boolean;
  backup: 'none' | 'incremental';
  provisionedSize: number;
  storageDomainId: string;
  /** relative to the data dir: storage/<sd>/images/<disk id>/<image id> (a file domain's layout) */
  file: string;
  status: DiskStatus;
  creationTime: number;
}

export interface SimAttachmentRecord {
  diskId: string;
  interface: 'virtio' | 'virtio_scsi' | 'sata' | 'ide';
  bootable: boolean;
  active: boolean;
  passDiscard: boolean;
  readOnly: boolean;
}

export interface SimNicRecord {
  id: string;
  name: string;
  interface: 'virtio' | 'e1000' | 'rtl8139';
  mac: string;
  linked: boolean;
  plugged: boolean;
}

export interface SimVmRecord {
  id: string;
  name: string;
  description: string;
  comment: string;
  status: VmStatus;
  memory: number;
  sockets: number;
  osType: string;
  clusterId: string;
  creationTime: number;
  startTime?: number;
  stopTime?: number;
  stopReason?: string;
  attachments: SimAttachmentRecord[];
  nics: SimNicRecord[];
  tagIds: string[];
  /** the host the VM runs on (the engine's run_on_vds); set while it is not down */
  runOnHostId?: string;
  /** the host it must run on (placement_policy.hosts, pinned); unset = any host of the cluster */
  pinnedHostId?: string;
}

/** A hypervisor of the one cluster. Every simulated host is this machine (address 127.0.0.1). */
export interface SimHostRecord {
  id: string;
  name: string; // 'sim-host', 'sim-host2', ...
  /** hardware_information.uuid, what vdsm.id holds on a real host */
  hwId: string;
}

export interface SimTagRecord {
  id: string;
  name: string;
  description: string;
  parentId: string;
}

/** One audit-log entry: what POST /events stored, and the simulator's own events. */
export interface SimEvent {
  index: number;
  code: number;
  severity: Severity;
  time: number;
  description: string;
  origin: string;
  customId?: number;
  correlationId?: string;
  floodRate?: number;
  vmId?: string;
  hostId?: string;
  clusterId?: string;
  storageDomainId?: string;
  dataCenterId?: string;
  templateId?: string;
  userId?: string;
}

export interface SimStorageDomainRecord {
  id: string;
  name: string;
  /** relative to the data dir */
  dir: string;
}

/** A VM checkpoint (vm_checkpoints): a persistent dirty bitmap named by its id on each of its disks. */
export interface SimCheckpointRecord {
  id: string;
  vmId: string;
  /** the previous checkpoint of the VM; absent for the first (root) one */
  parentId?: string;
  creationDate: number;
  state: 'created' | 'invalid';
  diskIds: string[];
}

/** The API's BackupPhase (internal phases folded as VmBackupMapper does). */
export type BackupPhase = 'initializing' | 'starting' | 'ready' | 'finalizing' | 'succeeded' | 'failed';

/** A VM backup (vm_backups): what POST /vms/{id}/backups started. */
export interface SimBackupRecord {
  id: string;
  vmId: string;
  phase: BackupPhase;
  fromCheckpointId?: string;
  /** the checkpoint this backup creates; absent when none of its disks can hold a bitmap */
  toCheckpointId?: string;
  disks: Array<{ diskId: string; backupMode: 'full' | 'incremental' }>;
  /** the host that runs the VM (live) or serves the transfers (cold) */
  hostId: string;
  /** the VM was up when it started (scratch disks) rather than down (volume bitmaps) */
  live: boolean;
  /** hybrid backups (cluster >= 4.7 without `legacy`): the snapshot "Auto-generated for Backup VM" */
  snapshotId?: string;
  creationDate: number;
  modificationDate: number;
  description?: string;
  requireConsistency: boolean;
}

export interface PersistedState {
  version: 3;
  instanceId: string;
  dataCenterId: string;
  clusterId: string;
  /** in order: the first is `sim-host` */
  hosts: SimHostRecord[];
  networkId: string;
  vnicProfileId: string;
  macPoolId: string;
  /** the cluster's default CPU profile (Everyone may use it) */
  cpuProfileId: string;
  storageDomains: SimStorageDomainRecord[];
  users: SimUserRecord[];
  groups: SimGroupRecord[];
  permissions: SimPermissionRecord[];
  vms: SimVmRecord[];
  disks: SimDiskRecord[];
  tags: SimTagRecord[];
  events: SimEvent[];
  nextEventIndex: number;
  macSeq: number;
  checkpoints: SimCheckpointRecord[];
  backups: SimBackupRecord[];
  /** the cluster's (and data center's) compatibility version ('4.7': hybrid backups by default) */
  clusterVersion: string;
}

/** OLVM 4.5's cluster level: UseHybridBackup is on (below 4.7 StartVmBackup, "legacy", runs). */
export const DEFAULT_CLUSTER_VERSION = '4.7';
export const ROOT_TAG_ID = '00000000-0000-0000-0000-000000000000';
export const BLANK_TEMPLATE_ID = '00000000-0000-0000-0000-000000000000';
/** The system object (Guid.SYSTEM, getGlobalIds('system')): permissions on it apply everywhere. */
export const SYSTEM_ID = 'aaa00000-0000-0000-0000-123456789aaa';
/** The built-in group every user is a member of (Guid.EVERYONE, getGlobalIds('everyone')). */
export const EVERYONE_ID = 'eee00000-0000-0000-0000-123456789eee';

export class SimState {
  private constructor(
    readonly dataDir: string,
    readonly data: PersistedState,
    readonly fresh: boolean,
  ) {}

  /**
   * Loads `<dataDir>/state.json` (migrating an older shape), or makes an empty engine
   * (fresh = true) with `hosts` hosts when there is none.
   */
  static open(dataDir: string, o: { hosts?: number } = {}): SimState {
    const file = path.join(dataDir, 'state.json');
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const raw = JSON.parse(text) as Record<string, unknown>;
      const state = new SimState(dataDir, migrateState(raw), false);
      if (raw['version'] !== state.data.version) state.save();
      return state;
    }
    const count = o.hosts ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error(`engine simulator: hosts must be a whole number >= 1, not ${count}`);
    const data: PersistedState = {
      version: 3,
      instanceId: randomUUID(),
      dataCenterId: randomUUID(),
      clusterId: randomUUID(),
      hosts: Array.from({ length: count }, (_, i) => ({ id: randomUUID(), name: hostName(i), hwId: randomUUID() })),
      networkId: randomUUID(),
      vnicProfileId: randomUUID(),
      macPoolId: randomUUID(),
      cpuProfileId: randomUUID(),
      storageDomains: [
        { id: randomUUID(), name: 'data1', dir: 'storage/data1' },
        { id: randomUUID(), name: 'data2', dir: 'storage/data2' },
      ],
      // users, groups and their permissions: accounts.ts
      users: [],
      groups: [],
      permissions: [],
      vms: [],
      disks: [],
      tags: [],
      events: [],
      nextEventIndex: 1000,
      macSeq: 1,
      checkpoints: [],
      backups: [],
      clusterVersion: DEFAULT_CLUSTER_VERSION,
    };
    const state = new SimState(dataDir, data, true);
    for (const sd of data.storageDomains) mkdirSync(state.abs(sd.dir), { recursive: true });
    state.save();
    return state;
  }

  abs(rel: string): string {
    return path.join(this.dataDir, rel);
  }

  save(): void {
    const file = path.join(this.dataDir, 'state.json');
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 1));
    renameSync(tmp, file);
  }

  vm(id: string): SimVmRecord | undefined {
    return this.data.vms.find((v) => v.id === id);
  }

  disk(id: string): SimDiskRecord | undefined {
    return this.data.disks.find((d) => d.id === id);
  }

  tag(id: string): SimTagRecord | undefined {
    return this.data.tags.find((t) => t.id === id);
  }

  user(id: string): SimUserRecord | undefined {
    return this.data.users.find((u) => u.id === id);
  }

  userByName(userName: string): SimUserRecord | undefined {
    return this.data.users.find((u) => u.userName.toLowerCase() === userName.toLowerCase());
  }

  group(id: string): SimGroupRecord | undefined {
    return this.data.groups.find((g) => g.id === id);
  }

  groupByName(name: string): SimGroupRecord | undefined {
    return this.data.groups.find((g) => g.name === name);
  }

  host(id: string): SimHostRecord | undefined {
    return this.data.hosts.find((h) => h.id === id);
  }

  /** By name ('sim-host2') or id. */
  hostByRef(nameOrId: string): SimHostRecord | undefined {
    return this.data.hosts.find((h) => h.name === nameOrId || h.id === nameOrId);
  }

  /** The first host: where the engine runs what needs "some host" (image transfers). */
  firstHost(): SimHostRecord {
    const h = this.data.hosts[0];
    if (!h) throw new Error('engine simulator has no host');
    return h;
  }

  /** The host a VM runs on; undefined when it is down. */
  hostOfVm(vm: SimVmRecord): SimHostRecord | undefined {
    return vm.status === 'down' || !vm.runOnHostId ? undefined : this.host(vm.runOnHostId);
  }

  /** VMs running (any status but down) on a host. */
  vmsOnHost(hostId: string): SimVmRecord[] {
    return this.data.vms.filter((v) => v.status !== 'down' && v.runOnHostId === hostId);
  }

  storageDomain(id: string): SimStorageDomainRecord | undefined {
    return this.data.storageDomains.find((s) => s.id === id);
  }

  /** The VM a disk is attached to (a disk belongs to at most one VM here: no shareable disks). */
  vmOfDisk(diskId: string): SimVmRecord | undefined {
    return this.data.vms.find((v) => v.attachments.some((a) => a.diskId === diskId));
  }

  /** A MAC from the cluster's pool (oVirt's default pool starts at 56:6f:...). */
  nextMac(): string {
    const n = this.data.macSeq++;
    const bytes = [0x56, 0x6f, 0x1a, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
  }

  addEvent(e: Omit<SimEvent, 'index' | 'time'> & { time?: number }): SimEvent {
    const event: SimEvent = { ...e, index: this.data.nextEventIndex++, time: e.time ?? Date.now() };
    this.data.events.push(event);
    this.save();
    return event;
  }
}

/** 'sim-host', 'sim-host2', 'sim-host3', ... */
export function hostName(i: number): string {
  return i === 0 ? 'sim-host' : `sim-host${i + 1}`;
}
