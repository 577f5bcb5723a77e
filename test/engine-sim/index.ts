import { randomUUID } from 'crypto';
import { promises as fs, mkdirSync } from 'fs';
import * as path from 'path';
import type { SimContext } from './context';
import { FaultInjector, type HeldRequest } from './faults';
import { createImage } from './images';
import { VmPower } from './power';
import { createVm, seedEngine } from './seed';
import { closeListener, engineApp, listen, proxyApp, type Listener } from './server';
import { TokenStore } from './sso';
import { dropPermissionsOn, grant, revoke, SYSTEM } from './access';
import { ensureAccounts, grantSeedRoles, SEED_USER_KEYS, seedUserName, type SimUserKey } from './accounts';
import { role } from './roles';
import { SimState, type DiskFormat, type SimDiskRecord, type SimEvent, type SimVmRecord, type VmStatus } from './state';
import { ensurePki, type SimPki } from './tls';
import { Transfers } from './transfers';
import { Backups } from './backups';
import { SimBackupHooks } from './backupHooks';

export type { SimEvent } from './state';
export type { SimUserKey } from './accounts';
export type { SimCheckpoint } from './backupHooks';

export interface EngineSimOptions {
  /** state: disk images, qemu logs, sockets */
  dataDir: string;
  /** 0 (default) = any free port, on 127.0.0.1 */
  port?: number;
  /** default false. true: a CA + server cert made with openssl into dataDir, HTTPS, caFile exposed */
  tls?: boolean;
  /** default true: on first start, three VMs with real data (web01 up; db01, app01 down) */
  seed?: boolean;
  /** default <dataDir>/qmp: a running VM's product-facing QMP socket is <qmpDir>/<vmId>.qmp */
  qmpDir?: string;
  /**
   * default 1: hosts of the one cluster, named sim-host, sim-host2, sim-host3, ... (all this
   * machine, address 127.0.0.1). Only read on a fresh data dir: a restart keeps the hosts it had.
   */
  hosts?: number;
}

export interface SimVmDisk {
  id: string;
  alias: string;
  description: string;
  format: DiskFormat;
  provisionedSize: number;
  /** the QEMU device id (oVirt's libvirt alias) */
  deviceId: string;
  /** absolute path of the image */
  file: string;
}

export interface SimVm {
  id: string;
  name: string;
  status: VmStatus;
  disks: SimVmDisk[];
  /** the host it runs on (`vm.host` in the API); null when down */
  hostId: string | null;
  hostName: string | null;
  /** the host it is pinned to (`addVm({host})`, `placement_policy.hosts`); null = any */
  pinnedHostId: string | null;
}

export interface SimHost {
  id: string;
  /** 'sim-host', 'sim-host2', ... */
  name: string;
}

/** A seeded account: the login name (`viewer@internal`) and its password. */
export interface SimCredentials {
  name: string;
  password: string;
}

/**
 * The seeded accounts by role in the tests (README.md "Users and permissions"): admin
 * (SuperUser on System), plain (user1: UserRole on web01 only), viewer, operator, creator,
 * diskop, grpop, backupadmin, roadmin.
 */
export type SimUsers = Record<SimUserKey, SimCredentials>;

/** What a permission is on: the same shape as the backend's PermitObject. */
export type SimObject = { kind: 'vm' | 'cluster' | 'datacenter' | 'storagedomain' | 'disk' | 'template'; id: string } | { kind: 'system' };

export interface SimPermission {
  id: string;
  roleId: string;
  roleName: string;
  principal: { kind: 'user' | 'group'; id: string };
  object: SimObject;
}

/**
 * An oVirt engine simulator for tests and the demo: the engine's REST API (JSON and XML), SSO,
 * the PKI resource and an imageio endpoint, all answering as reference/ovirt-api.md describes,
 * whose VMs are real QEMU processes. See README.md beside this file.
 */
export class EngineSim {
  private constructor(
    readonly baseUrl: string,
    readonly caFile: string | undefined,
    readonly qmpDir: string,
    readonly users: SimUsers,
    private readonly ctx: SimContext,
    private readonly faults: FaultInjector,
    private readonly listeners: Listener[],
  ) {
    this.backup = new SimBackupHooks(ctx.state, ctx.backups, ctx.transfers);
  }

  /** Backup API hooks: cleanup times, phase and imageio faults, invalid checkpoints, lost bitmaps. */
  readonly backup: SimBackupHooks;

  static async start(opts: EngineSimOptions): Promise<EngineSim> {
    const dataDir = path.resolve(opts.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const state = SimState.open(dataDir, { hosts: opts.hosts });
    const qmpDir = path.resolve(opts.qmpDir ?? path.join(dataDir, 'qmp'));
    const power = new VmPower(state, { qmpDir, runDir: path.join(dataDir, 'run'), logDir: path.join(dataDir, 'logs'), scratchDir: path.join(dataDir, 'tmp') });
    const pki: SimPki | undefined = opts.tls ? await ensurePki(dataDir) : undefined;
    const tokens = new TokenStore(state);
    const faults = new FaultInjector();
    const scheme = pki ? 'https' : 'http';
    let origins = { engine: '', daemon: '', proxy: '' };

    const deleteDisk = async (disk: SimDiskRecord): Promise<void> => {
      for (const vm of state.data.vms) vm.attachments = vm.attachments.filter((a) => a.diskId !== disk.id);
      state.data.disks = state.data.disks.filter((d) => d !== disk);
      dropPermissionsOn(state, disk.id);
      await fs.rm(path.dirname(state.abs(disk.file)), { recursive: true, force: true });
    };
    const removeVm = async (vm: SimVmRecord, o: { detachOnly: boolean }): Promise<void> => {
      state.data.vms = state.data.vms.filter((v) => v !== vm);
      dropPermissionsOn(state, vm.id);
      if (!o.detachOnly) {
        for (const a of vm.attachments) {
          const d = state.disk(a.diskId);
          if (d) await deleteDisk(d);
        }
      }
    };
    const transfers = new Transfers(state, path.join(dataDir, 'run'), deleteDisk);
    const backups = new Backups(state, power, path.join(dataDir, 'run'));

    const ctx: SimContext = {
      state,
      power,
      transfers,
      backups,
      tokens,
      urls: () => origins,
      deleteDisk,
      removeVm,
      createDisk: (p) => {
        const sd = state.storageDomain(p.storageDomainId);
        if (!sd) return Promise.reject(new Error(`no storage domain ${p.storageDomainId}`));
        const id = p.id ?? randomUUID();
        const imageId = p.imageId ?? randomUUID();
        const disk: SimDiskRecord = {
          id,
          imageId,
          alias: p.alias,
          description: p.description,
          format: p.format,
          sparse: p.sparse,
          backup: p.backup,
          provisionedSize: p.provisionedSize,
          storageDomainId: sd.id,
          file: path.join(sd.dir, 'images', id, imageId),
          status: 'locked',
          creationTime: Date.now(),
        };
        state.data.disks.push(disk);
        state.save();
        // the engine creates the volume in an async task; the disk is 'locked' until then
        createImage(state.abs(disk.file), disk.format, disk.provisionedSize)
          .then(() => new Promise((r) => setTimeout(r, 100)))
          .then(() => {
            disk.status = 'ok';
            state.save();
          })
          .catch((err: unknown) => {
            disk.status = 'illegal';
            state.save();
            state.addEvent({ code: 2021, severity: 'error', description: `Add-Disk operation failed to complete: ${(err as Error).message}`, origin: 'oVirt' });
          });
        return Promise.resolve(disk);
      },
    };

    // accounts first (a fresh engine, or one from an older simulator), their grants once the
    // objects they name exist
    const newAccounts = ensureAccounts(state);
    if (state.fresh && opts.seed !== false) await seedEngine(ctx);
    grantSeedRoles(state, newAccounts);
    // after an engine restart on the same data dir, the VMs that were running run again
    if (!state.fresh) {
      for (const d of state.data.disks) if (d.status === 'locked') d.status = 'ok'; // transfers died with the engine
      // ...each on the host it ran on
      for (const vm of state.data.vms) {
        if (vm.status === 'down') continue;
        const paused = vm.status === 'paused';
        const hostId = vm.runOnHostId;
        vm.status = 'down';
        await power.start(vm, paused, { hostId }).catch(() => undefined);
      }
      state.save();
    }

    const main = await listen(engineApp(ctx, faults, pki), opts.port ?? 0, pki);
    const proxy = await listen(proxyApp(ctx, faults), 0, pki);
    origins = { engine: `${scheme}://127.0.0.1:${main.port}`, daemon: `${scheme}://127.0.0.1:${main.port}`, proxy: `${scheme}://127.0.0.1:${proxy.port}` };
    const users = Object.fromEntries(
      SEED_USER_KEYS.map((key) => {
        const name = seedUserName(key);
        return [key, { name, password: state.userByName(name)?.password ?? '' }];
      }),
    ) as SimUsers;
    return new EngineSim(`${origins.engine}/ovirt-engine`, pki?.caFile, qmpDir, users, ctx, faults, [main, proxy]);
  }

  vmIds(): string[] {
    return this.ctx.state.data.vms.map((v) => v.id);
  }

  vmByName(name: string): SimVm {
    const vm = this.ctx.state.data.vms.find((v) => v.name === name);
    if (!vm) throw new Error(`engine simulator has no vm named ${name}`);
    return this.simVm(vm.id);
  }

  vmById(id: string): SimVm {
    return this.simVm(id);
  }

  /** The hosts of the cluster, in order (the first is `sim-host`). */
  hostIds(): SimHost[] {
    return this.ctx.state.data.hosts.map((h) => ({ id: h.id, name: h.name }));
  }

  /**
   * A new VM with fresh disks and one NIC. `running`: started as `POST /vms/{id}/start` would
   * (placed on its pinned host, else the least busy one). `host` (name or id) pins it.
   */
  /** `permittedToPlainUser`: user1@internal gets UserRole on it (as on web01). */
  async addVm(p: { name: string; disks: Array<{ sizeBytes: number; format: 'cow' | 'raw'; description?: string }>; running?: boolean; permittedToPlainUser?: boolean; host?: string }): Promise<SimVm> {
    const vm = await createVm(this.ctx, p);
    if (p.running) await this.ctx.power.start(vm, false);
    return this.simVm(vm.id);
  }

  /** Guest I/O through HMP qemu-io on the running VM (dirties bitmaps); fails if the VM is down. */
  async guestWrite(vmId: string, diskId: string, offset: number, data: Buffer): Promise<void> {
    await this.ctx.power.guestWrite(vmId, diskId, offset, data);
  }

  /** The guest-visible content of a disk (qemu-img convert; flushed first when the VM runs). */
  async diskBytes(vmId: string, diskId: string): Promise<Buffer> {
    const disk = this.ctx.state.disk(diskId);
    if (!disk) throw new Error(`engine simulator has no disk ${diskId}`);
    return this.ctx.power.diskBytes(vmId, disk);
  }

  events(): SimEvent[] {
    return this.ctx.state.data.events.map((e) => ({ ...e }));
  }

  failNext(p: { method: string; pathPrefix: string; status: number; times?: number }): void {
    this.faults.failNext(p);
  }

  hangNext(p: { method: string; pathPrefix: string }): void {
    this.faults.hangNext(p);
  }

  /** The next matching request waits until `release()`, then is served as usual; `held`
   *  resolves once one waits (a restore held mid-upload, say). */
  holdNext(p: { method: string; pathPrefix: string }): HeldRequest {
    return this.faults.holdNext(p);
  }

  /** Every SSO token (or every token of one user, 'admin@internal') stops working now. */
  expireTokens(userName?: string): void {
    this.ctx.tokens.expire(userName);
  }

  /** Lifetime of tokens issued from now on (their `exp`); undefined = the engine's default (none). */
  setTokenTtl(ms: number | undefined): void {
    this.ctx.tokens.ttlMs = ms;
  }

  /** The QEMU of a running VM dies (as in a crash); the VM goes down with an error event. */
  async crashVm(vmId: string): Promise<void> {
    await this.ctx.power.crash(vmId);
  }

  /** The engine id of a user ('viewer@internal'). */
  userId(userName: string): string {
    const u = this.ctx.state.userByName(userName);
    if (!u) throw new Error(`engine simulator has no user ${userName}`);
    return u.id;
  }

  /** The engine id of a group ('backup-operators', 'Everyone'). */
  groupId(name: string): string {
    const g = this.ctx.state.groupByName(name);
    if (!g) throw new Error(`engine simulator has no group ${name}`);
    return g.id;
  }

  /** The one data center, the one cluster and the storage domains (data1, data2). */
  inventory(): { dataCenterId: string; clusterId: string; storageDomains: Array<{ id: string; name: string }> } {
    const d = this.ctx.state.data;
    return { dataCenterId: d.dataCenterId, clusterId: d.clusterId, storageDomains: d.storageDomains.map((sd) => ({ id: sd.id, name: sd.name })) };
  }

  /**
   * Grants a role (name or id) to a user (login name or id) or a group (name or id) on an object,
   * as AddPermission stores one (test set-up: nobody's rights are checked). Returns its id; the
   * same grant twice is one permission.
   */
  grant(p: { role: string; to: string; on: SimObject }): string {
    const st = this.ctx.state;
    return grant(st, { roleId: role(p.role).id, principalId: this.principal(p.to), object: p.on.kind === 'system' ? SYSTEM : p.on }).id;
  }

  /** Removes a permission by id, or every grant of that role to that principal on that object; returns how many went. */
  revoke(p: string | { role: string; to: string; on: SimObject }): number {
    const st = this.ctx.state;
    const ids =
      typeof p === 'string'
        ? [p]
        : st.data.permissions.filter((x) => x.roleId === role(p.role).id && x.principalId === this.principal(p.to) && x.objectId === (p.on.kind === 'system' ? SYSTEM.id : p.on.id)).map((x) => x.id);
    return ids.filter((id) => revoke(st, id)).length;
  }

  /** Every permission the engine holds, as stored (not rewritten, whatever the role's app mode). */
  permissions(): SimPermission[] {
    const st = this.ctx.state;
    return st.data.permissions.map((x) => ({
      id: x.id,
      roleId: x.roleId,
      roleName: role(x.roleId).name,
      principal: { kind: st.user(x.principalId) ? 'user' : 'group', id: x.principalId },
      object: x.objectKind === 'system' ? { kind: 'system' } : { kind: x.objectKind as Exclude<SimObject['kind'], 'system'>, id: x.objectId },
    }));
  }

  /** The VM is gone, as after `DELETE /vms/{id}` (stopped first if it runs): its disks and permissions too. */
  async deleteVm(vmId: string): Promise<void> {
    const vm = this.ctx.state.vm(vmId);
    if (!vm) throw new Error(`engine simulator has no vm ${vmId}`);
    if (vm.status !== 'down') await this.ctx.power.stop(vm);
    await this.ctx.removeVm(vm, { detachOnly: false });
  }

  /** Stops every QEMU (quit) and qemu-nbd, then the listeners. */
  async close(): Promise<void> {
    this.faults.releaseAll();
    await this.ctx.transfers.closeAll();
    await this.ctx.backups.closeAll();
    await this.ctx.power.closeAll();
    this.ctx.state.save();
    for (const l of this.listeners) await closeListener(l);
  }

  private principal(nameOrId: string): string {
    const st = this.ctx.state;
    const id = (st.userByName(nameOrId) ?? st.user(nameOrId) ?? st.groupByName(nameOrId) ?? st.group(nameOrId))?.id;
    if (!id) throw new Error(`engine simulator has no user or group ${nameOrId}`);
    return id;
  }

  private simVm(id: string): SimVm {
    const st = this.ctx.state;
    const vm = st.vm(id);
    if (!vm) throw new Error(`engine simulator has no vm ${id}`);
    const disks = vm.attachments
      .map((a) => st.disk(a.diskId))
      .filter((d): d is SimDiskRecord => d !== undefined)
      .map((d) => ({ id: d.id, alias: d.alias, description: d.description, format: d.format, provisionedSize: d.provisionedSize, deviceId: `ua-${d.id}`, file: st.abs(d.file) }));
    const host = st.hostOfVm(vm);
    return { id: vm.id, name: vm.name, status: vm.status, disks, hostId: host?.id ?? null, hostName: host?.name ?? null, pinnedHostId: vm.pinnedHostId ?? null };
  }
}
