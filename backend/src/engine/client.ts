import * as backups from './backups';
import * as clusters from './clusters';
import { EngineConnection, type ConnectionOptions, type EngineCallOptions } from './connection';
import * as diskAttach from './diskAttach';
import * as diskLifecycle from './diskLifecycle';
import * as disks from './disks';
import * as events from './events';
import * as hosts from './hosts';
import { ImageioClient } from './imageio';
import * as imageTransfers from './imageTransfers';
import * as networks from './networks';
import * as nics from './nics';
import * as permissions from './permissions';
import * as storageDomains from './storageDomains';
import * as system from './system';
import type { PollOptions } from './poll';
import * as tags from './tags';
import * as vmCreate from './vmCreate';
import * as vmWait from './vmWait';
import * as vms from './vms';
import type { BackupDisk, BackupPhase, Checkpoint, VmBackup } from './backupTypes';
import type {
  ApiInfo,
  Cluster,
  Disk,
  DiskAttachment,
  DiskStatus,
  EngineEvent,
  Host,
  ImageTransfer,
  ImageTransferPhase,
  Network,
  Nic,
  PermissionEntry,
  PermitObject,
  StorageDomain,
  SystemRole,
  Tag,
  User,
  Vm,
  VmDisk,
  VmStatus,
  VnicProfile,
} from './types';

export interface EngineClientOptions extends ConnectionOptions {
  /** `origin` of the events we post; default 'olvm-backup'. */
  eventOrigin?: string;
}

/**
 * The oVirt / OLVM engine as the backend sees it: typed reads of the inventory, the few actions
 * a backup needs, events and tags. One instance per identity: the service account
 * (`auth.kind = 'password'`, re-login on 401) or a portal user's token (`'bearer'`, sent with
 * `Filter: true`, so a VM the user may not see answers ENGINE_NOT_FOUND).
 */
export class EngineClient {
  readonly connection: EngineConnection;
  private readonly eventOrigin: string | undefined;
  private readonly caFile: string | undefined;

  constructor(opts: EngineClientOptions) {
    this.connection = new EngineConnection(opts);
    this.eventOrigin = opts.eventOrigin;
    this.caFile = opts.caFile;
  }

  /** Product version and the calling user's id (`GET /api`). */
  getApiInfo(opts?: EngineCallOptions): Promise<ApiInfo> {
    return system.getApiInfo(this.connection, opts);
  }

  /** The calling user (`/api` authenticated_user, then the user entity). */
  getCurrentUser(opts?: EngineCallOptions): Promise<User> {
    return system.getCurrentUser(this.connection, opts);
  }

  getUser(id: string, opts?: EngineCallOptions): Promise<User> {
    return system.getUser(this.connection, id, opts);
  }

  findUsers(search: string, opts?: EngineCallOptions): Promise<User[]> {
    return system.findUsers(this.connection, search, opts);
  }

  /** The roles the user holds on the whole system: his, his groups' and Everyone's. */
  listSystemRoles(userId: string, opts?: EngineCallOptions): Promise<SystemRole[]> {
    return system.listSystemRoles(this.connection, userId, opts);
  }

  /**
   * An object's permissions with their roles' permits (`follow=role.permits`), as this client's
   * `Filter` shows them; pick the user's with `permitsOf` (reference ovirt-permissions.md §3.1, §5).
   */
  listPermissions(obj: PermitObject, opts?: EngineCallOptions): Promise<PermissionEntry[]> {
    return permissions.listPermissions(this.connection, obj, opts);
  }

  /** The engine groups of the user's directory groups, with their names, plus Everyone (Everyone
   *  only if the engine will not say). */
  listUserGroups(userId: string, opts?: EngineCallOptions): Promise<Array<{ id: string; name: string }>> {
    return permissions.listUserGroups(this.connection, userId, opts);
  }

  /** Whether the token's user holds an ADMIN-type role anywhere (the VM Portal's `Filter: false` probe). */
  isEngineAdmin(opts?: EngineCallOptions): Promise<boolean> {
    return permissions.isEngineAdmin(this.connection, opts);
  }

  getVm(id: string, opts?: vms.GetVmOptions): Promise<Vm> {
    return vms.getVm(this.connection, id, opts);
  }

  listVms(opts?: vms.ListVmsOptions): Promise<Vm[]> {
    return vms.listVms(this.connection, opts);
  }

  findVms(search: string, opts?: vms.FindVmsOptions): Promise<Vm[]> {
    return vms.findVms(this.connection, search, opts);
  }

  findVmByName(name: string, opts?: EngineCallOptions): Promise<Vm | undefined> {
    return vms.findVmByName(this.connection, name, opts);
  }

  findVmsByTag(tag: string, opts?: EngineCallOptions): Promise<Vm[]> {
    return vms.findVmsByTag(this.connection, tag, opts);
  }

  getVmOvf(id: string, opts?: EngineCallOptions): Promise<string> {
    return vms.getVmOvf(this.connection, id, opts);
  }

  startVm(id: string, opts?: EngineCallOptions & { pause?: boolean }): Promise<void> {
    return vms.startVm(this.connection, id, opts);
  }

  stopVm(id: string, opts?: EngineCallOptions & { force?: boolean; reason?: string }): Promise<void> {
    return vms.stopVm(this.connection, id, opts);
  }

  waitForVmStatus(id: string, wanted: readonly VmStatus[], opts: vmWait.WaitForVmStatusOptions): Promise<Vm> {
    return vmWait.waitForVmStatus(this.connection, id, wanted, opts);
  }

  listDiskAttachments(vmId: string, opts?: EngineCallOptions & { withDisks?: boolean }): Promise<DiskAttachment[]> {
    return disks.listDiskAttachments(this.connection, vmId, opts);
  }

  listVmDisks(vmId: string, opts?: EngineCallOptions): Promise<VmDisk[]> {
    return disks.listVmDisks(this.connection, vmId, opts);
  }

  getDisk(id: string, opts?: EngineCallOptions): Promise<Disk> {
    return disks.getDisk(this.connection, id, opts);
  }

  listVmNics(vmId: string, opts?: EngineCallOptions & { withProfiles?: boolean }): Promise<Nic[]> {
    return nics.listVmNics(this.connection, vmId, opts);
  }

  getVnicProfile(id: string, opts?: EngineCallOptions): Promise<VnicProfile> {
    return nics.getVnicProfile(this.connection, id, opts);
  }

  listNetworks(opts?: EngineCallOptions): Promise<Network[]> {
    return networks.listNetworks(this.connection, opts);
  }

  listVnicProfiles(opts?: EngineCallOptions): Promise<VnicProfile[]> {
    return networks.listVnicProfiles(this.connection, opts);
  }

  getHost(id: string, opts?: EngineCallOptions): Promise<Host> {
    return hosts.getHost(this.connection, id, opts);
  }

  listHosts(opts?: EngineCallOptions & { search?: string }): Promise<Host[]> {
    return hosts.listHosts(this.connection, opts);
  }

  getCluster(id: string, opts?: EngineCallOptions): Promise<Cluster> {
    return clusters.getCluster(this.connection, id, opts);
  }

  listClusters(opts?: EngineCallOptions & { search?: string }): Promise<Cluster[]> {
    return clusters.listClusters(this.connection, opts);
  }

  getStorageDomain(id: string, opts?: EngineCallOptions): Promise<StorageDomain> {
    return storageDomains.getStorageDomain(this.connection, id, opts);
  }

  listStorageDomains(opts?: EngineCallOptions & { search?: string }): Promise<StorageDomain[]> {
    return storageDomains.listStorageDomains(this.connection, opts);
  }

  listTags(opts?: EngineCallOptions): Promise<Tag[]> {
    return tags.listTags(this.connection, opts);
  }

  findTagByName(name: string, opts?: EngineCallOptions): Promise<Tag | undefined> {
    return tags.findTagByName(this.connection, name, opts);
  }

  addTag(tag: { name: string; description?: string; parentId?: string }, opts?: EngineCallOptions): Promise<Tag> {
    return tags.addTag(this.connection, tag, opts);
  }

  listVmTags(vmId: string, opts?: EngineCallOptions): Promise<Tag[]> {
    return tags.listVmTags(this.connection, vmId, opts);
  }

  assignTag(vmId: string, tag: { name: string } | { id: string }, opts?: EngineCallOptions): Promise<Tag> {
    return tags.assignTag(this.connection, vmId, tag, opts);
  }

  unassignTag(vmId: string, tagId: string, opts?: EngineCallOptions): Promise<void> {
    return tags.unassignTag(this.connection, vmId, tagId, opts);
  }

  addEvent(ev: events.NewEvent, opts?: EngineCallOptions): Promise<EngineEvent> {
    return events.addEvent(this.connection, ev, { ...opts, origin: this.eventOrigin });
  }

  listEvents(opts?: EngineCallOptions & { search?: string; from?: number; max?: number }): Promise<EngineEvent[]> {
    return events.listEvents(this.connection, opts);
  }

  /** `POST /disks` (reference §7.1): answers with the disk still `locked`; see waitForDiskStatus. */
  addDisk(disk: diskLifecycle.NewDisk, opts?: EngineCallOptions): Promise<Disk> {
    return diskLifecycle.addDisk(this.connection, disk, opts);
  }

  removeDisk(id: string, opts?: EngineCallOptions): Promise<void> {
    return diskLifecycle.removeDisk(this.connection, id, opts);
  }

  listDisks(opts?: EngineCallOptions & { search?: string; max?: number }): Promise<Disk[]> {
    return diskLifecycle.listDisks(this.connection, opts);
  }

  waitForDiskStatus(id: string, wanted: readonly DiskStatus[], opts: PollOptions): Promise<Disk> {
    return diskLifecycle.waitForDiskStatus(this.connection, id, wanted, opts);
  }

  waitForDiskGone(id: string, opts: PollOptions): Promise<void> {
    return diskLifecycle.waitForDiskGone(this.connection, id, opts);
  }

  /** `POST /imagetransfers` (reference §5.1); wait for `transferring` before using its URLs. */
  createImageTransfer(t: imageTransfers.NewImageTransfer, opts?: EngineCallOptions): Promise<ImageTransfer> {
    return imageTransfers.createImageTransfer(this.connection, t, opts);
  }

  getImageTransfer(id: string, opts?: EngineCallOptions): Promise<ImageTransfer> {
    return imageTransfers.getImageTransfer(this.connection, id, opts);
  }

  listImageTransfers(opts?: EngineCallOptions): Promise<ImageTransfer[]> {
    return imageTransfers.listImageTransfers(this.connection, opts);
  }

  finalizeImageTransfer(id: string, opts?: EngineCallOptions): Promise<void> {
    return imageTransfers.finalizeImageTransfer(this.connection, id, opts);
  }

  /** Abandons the transfer; an upload's disk is deleted by the engine. */
  cancelImageTransfer(id: string, opts?: EngineCallOptions): Promise<void> {
    return imageTransfers.cancelImageTransfer(this.connection, id, opts);
  }

  /** Resolves with the transfer once its phase is one of `phases`, or null when the engine no longer knows it. */
  waitForTransferPhase(id: string, phases: readonly ImageTransferPhase[], opts: PollOptions): Promise<ImageTransfer | null> {
    return imageTransfers.waitForTransferPhase(this.connection, id, phases, opts);
  }

  /** A client for a transfer's `transfer_url` / `proxy_url`, trusting the engine's CA. */
  imageio(url: string, opts: { timeoutMs?: number; maxConnections?: number } = {}): ImageioClient {
    return new ImageioClient({ url, caFile: this.caFile, ...opts });
  }

  /** `POST /vms/{id}/backups` (reference §4.1): answers in `initializing`; poll to `ready`. */
  startBackup(vmId: string, b: backups.NewVmBackup, opts?: EngineCallOptions): Promise<VmBackup> {
    return backups.startBackup(this.connection, vmId, b, opts);
  }

  getBackup(vmId: string, backupId: string, opts?: EngineCallOptions): Promise<VmBackup> {
    return backups.getBackup(this.connection, vmId, backupId, opts);
  }

  listBackups(vmId: string, opts?: EngineCallOptions): Promise<VmBackup[]> {
    return backups.listBackups(this.connection, vmId, opts);
  }

  /** The backup's disks with their `backup_mode` (full | incremental). */
  listBackupDisks(vmId: string, backupId: string, opts?: EngineCallOptions): Promise<BackupDisk[]> {
    return backups.listBackupDisks(this.connection, vmId, backupId, opts);
  }

  finalizeBackup(vmId: string, backupId: string, opts?: EngineCallOptions): Promise<void> {
    return backups.finalizeBackup(this.connection, vmId, backupId, opts);
  }

  /** Polls until one of `phases`; `failed` (unless wanted) or 404 is ENGINE_BACKUP_FAILED with the
   *  engine's event, or null for a 404 when `goneIsAnswer`. */
  waitForBackupPhase(vmId: string, backupId: string, phases: readonly BackupPhase[], opts: PollOptions & { goneIsAnswer?: boolean }): Promise<VmBackup | null> {
    return backups.waitForBackupPhase(this.connection, vmId, backupId, phases, opts);
  }

  listCheckpoints(vmId: string, opts?: EngineCallOptions): Promise<Checkpoint[]> {
    return backups.listCheckpoints(this.connection, vmId, opts);
  }

  /** The checkpoint, or null when the engine does not have it. */
  getCheckpoint(vmId: string, checkpointId: string, opts?: EngineCallOptions): Promise<Checkpoint | null> {
    return backups.getCheckpoint(this.connection, vmId, checkpointId, opts);
  }

  /** `POST /vms` from a stored OVF (reference §7.2); the disks it references must exist. */
  createVmFromConfiguration(v: vmCreate.VmFromConfiguration, opts?: EngineCallOptions): Promise<Vm> {
    return vmCreate.createVmFromConfiguration(this.connection, v, opts);
  }

  removeVm(id: string, opts?: EngineCallOptions & { detachOnly?: boolean }): Promise<void> {
    return vmCreate.removeVm(this.connection, id, opts);
  }

  waitForVmGone(id: string, opts: PollOptions): Promise<void> {
    return vmCreate.waitForVmGone(this.connection, id, opts);
  }

  /** `POST /vms/{id}/diskattachments` for an existing disk; `active` is always sent. */
  attachDisk(vmId: string, a: diskAttach.NewDiskAttachment, opts?: EngineCallOptions): Promise<DiskAttachment> {
    return diskAttach.attachDisk(this.connection, vmId, a, opts);
  }

  /** Detaches a disk from a VM; the disk stays, floating. */
  detachDisk(vmId: string, diskId: string, opts?: EngineCallOptions): Promise<void> {
    return diskAttach.detachDisk(this.connection, vmId, diskId, opts);
  }

  /** Revokes the service account's token (never a portal user's) and closes sockets. */
  close(opts?: EngineCallOptions): Promise<void> {
    return this.connection.close(opts);
  }
}
