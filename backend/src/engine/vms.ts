import { AppError } from '../errors';
import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { completeDisks, listVmDisks } from './disks';
import { listVmNics } from './nics';
import { entityOf } from './parse/fields';
import { parseVm, parseVms } from './parse/vm';
import { listVmTags } from './tags';
import type { Vm } from './types';

export interface GetVmOptions extends EngineCallOptions {
  /** `all_content=true`: include the OVF (`vm.configuration`), reference §1.4, §3.1. */
  allContent?: boolean;
  /** Inline disk attachments with their disks, NICs, tags (`follow=`, engine 4.2+). When the
   *  engine does not inline them they are read separately, so they are always present. */
  withDisks?: boolean;
  withNics?: boolean;
  withTags?: boolean;
}

export async function getVm(conn: EngineConnection, id: string, opts: GetVmOptions = {}): Promise<Vm> {
  const follow = [opts.withDisks && 'disk_attachments.disk', opts.withNics && 'nics', opts.withTags && 'tags'].filter(Boolean).join(',');
  const query = { all_content: opts.allContent ? true : undefined, follow: follow || undefined };
  const vm = parseVm(entityOf(await conn.request({ ...opts, method: 'GET', path: `/vms/${seg(id)}`, query }), `vm ${id}`));
  return completeFollowed(conn, vm, opts);
}

export interface FindVmsOptions extends EngineCallOptions {
  /** Engine default (missing) is case-insensitive; sent explicitly either way (reference §1.4). */
  caseSensitive?: boolean;
  max?: number;
  allContent?: boolean;
}

/** `GET /vms?search=...` in the engine's search language (`name=web*`, `tag=daily`, `status=up`). */
export async function findVms(conn: EngineConnection, search: string, opts: FindVmsOptions = {}): Promise<Vm[]> {
  const query = {
    search,
    case_sensitive: opts.caseSensitive ?? false,
    max: opts.max,
    all_content: opts.allContent ? true : undefined,
  };
  return parseVms(await conn.request({ ...opts, method: 'GET', path: '/vms', query }));
}

export interface ListVmsOptions extends EngineCallOptions {
  max?: number;
  /** Inline each VM's disk attachments with their disks (one request, `follow=`); an engine
   *  that does not inline them is asked VM by VM. */
  withDisks?: boolean;
}

export async function listVms(conn: EngineConnection, opts: ListVmsOptions = {}): Promise<Vm[]> {
  const query = { max: opts.max, follow: opts.withDisks ? 'disk_attachments.disk' : undefined };
  const vms = parseVms(await conn.request({ ...opts, method: 'GET', path: '/vms', query }));
  if (!opts.withDisks) return vms;
  return Promise.all(vms.map((vm) => completeFollowed(conn, vm, { withDisks: true, signal: opts.signal, timeoutMs: opts.timeoutMs })));
}

/** The VM with exactly this name, or undefined. The search pattern may match more (`*` is a
 *  wildcard), so the name is compared exactly here. */
export async function findVmByName(conn: EngineConnection, name: string, opts: EngineCallOptions = {}): Promise<Vm | undefined> {
  const vms = await findVms(conn, `name=${name}`, { ...opts, caseSensitive: true });
  return vms.find((vm) => vm.name === name);
}

/** VMs carrying an engine tag (`tag` is a VM search field, reference §9). */
export function findVmsByTag(conn: EngineConnection, tag: string, opts: EngineCallOptions = {}): Promise<Vm[]> {
  return findVms(conn, `tag=${tag}`, opts);
}

/** The VM definition the engine keeps (oVirt-flavoured OVF), read with all_content=true. */
export async function getVmOvf(conn: EngineConnection, id: string, opts: EngineCallOptions = {}): Promise<string> {
  const vm = await getVm(conn, id, { ...opts, allContent: true });
  if (vm.configuration === undefined) {
    throw new AppError('ENGINE_PROTOCOL_ERROR', `engine sent vm ${vm.name} (${id}) without its ovf although all_content was asked for`);
  }
  return vm.configuration.data;
}

/** `POST /vms/{id}/start`; with pause=true QEMU starts with its CPUs stopped (reference §8). */
export async function startVm(conn: EngineConnection, id: string, opts: EngineCallOptions & { pause?: boolean } = {}): Promise<void> {
  await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(id)}/start`, body: { pause: opts.pause ?? false } });
}

/** `POST /vms/{id}/stop` (power off); `force` is needed while an engine backup runs. */
export async function stopVm(
  conn: EngineConnection,
  id: string,
  opts: EngineCallOptions & { force?: boolean; reason?: string } = {},
): Promise<void> {
  const body: Record<string, unknown> = {};
  if (opts.force !== undefined) body.force = opts.force;
  if (opts.reason !== undefined) body.reason = opts.reason;
  await conn.request({ ...opts, method: 'POST', path: `/vms/${seg(id)}/stop`, body });
}

async function completeFollowed(conn: EngineConnection, vm: Vm, opts: GetVmOptions): Promise<Vm> {
  const call: EngineCallOptions = { signal: opts.signal, timeoutMs: opts.timeoutMs };
  if (opts.withDisks) {
    vm.diskAttachments =
      vm.diskAttachments === undefined ? await listVmDisks(conn, vm.id, call) : await completeDisks(conn, vm.diskAttachments, call);
  }
  if (opts.withNics && vm.nics === undefined) vm.nics = await listVmNics(conn, vm.id, call);
  if (opts.withTags && vm.tags === undefined) vm.tags = await listVmTags(conn, vm.id, call);
  return vm;
}
