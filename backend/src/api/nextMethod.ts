/**
 * Which method each VM's next backup is foreseen to use, for the chain forecast of the VM list
 * and the VM tab: the method its policy names, else the service's `backup.method`; `auto`
 * resolved as the backup resolves it (backup/model.ts BackupMethod): `qmp` when the VM runs and
 * the host link reaches its host, `engine` otherwise. Cheap on purpose: the hosts and the
 * VMs' placement come from the service account in one listing each, reused for a short while.
 */
import type { BackupMethod } from '../backup';
import { autoMethod, RUNNING_VM_STATUSES } from '../backup/model';
import type { EngineClient, Vm } from '../engine';
import type { PointMethod } from '../repository/model';
import { TtlCache } from './ttlCache';

/** How long the service account's host list and VM placement are reused. */
const PLACEMENT_TTL_MS = 30_000;

export interface MethodSettings {
  /** config backup.method */
  defaultMethod: BackupMethod;
  /** Whether the host link reaches a host, by the address the engine knows it by; `true`: every
   *  host (a local QMP directory serves whichever host the VM is on). */
  hostLinked: ((hostAddress: string) => boolean) | true;
}

export class NextMethods {
  private readonly cache = new TtlCache<Map<string, string>>(4);

  constructor(
    private readonly settings: MethodSettings,
    private readonly engine: Pick<EngineClient, 'listHosts' | 'listVms'>,
  ) {}

  /** VM id → the method its next backup will use. `asked`: the policies' methods by VM. */
  async forVms(vms: readonly Vm[], asked: ReadonlyMap<string, BackupMethod>): Promise<Map<string, PointMethod>> {
    const out = new Map<string, PointMethod>();
    const open: Vm[] = [];
    for (const vm of vms) {
      const m = asked.get(vm.id) ?? this.settings.defaultMethod;
      if (m !== 'auto') out.set(vm.id, m);
      else if (!RUNNING_VM_STATUSES.includes(vm.status) || this.settings.hostLinked === true) out.set(vm.id, autoMethod(vm.status, true));
      else open.push(vm);
    }
    if (open.length === 0) return out;
    const linked = this.settings.hostLinked;
    const [hosts, placement] = await Promise.all([this.hostAddresses(), this.placement(open)]);
    for (const vm of open) {
      const address = hosts.get(vm.hostId ?? placement.get(vm.id) ?? '');
      out.set(vm.id, autoMethod(vm.status, address !== undefined && linked !== true && linked(address)));
    }
    return out;
  }

  /** Host id → address. */
  private hostAddresses(): Promise<Map<string, string>> {
    return this.cache.load('hosts', PLACEMENT_TTL_MS, async () => new Map((await this.engine.listHosts()).map((h) => [h.id, h.address])));
  }

  /** VM id → host id, for VMs a user's filtered view showed without their host. */
  private async placement(vms: readonly Vm[]): Promise<Map<string, string>> {
    if (vms.every((v) => v.hostId !== undefined)) return new Map();
    return this.cache.load('placement', PLACEMENT_TTL_MS, async () => new Map((await this.engine.listVms()).flatMap((v) => (v.hostId ? [[v.id, v.hostId] as const] : []))));
  }
}
