import { seg, type EngineCallOptions, type EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseVm } from './parse/vm';
import { pollUntil, type PollOptions } from './poll';
import type { Vm } from './types';
import { getVm } from './vms';

/** A VM made from a stored definition (reference §7.2). */
export interface VmFromConfiguration {
  clusterId: string;
  /** Overrides the name inside the definition. */
  name: string;
  configuration: { type: 'ovf'; data: string };
  /** New VM id, and new MACs from the cluster's pool for every NIC. */
  regenerateIds: boolean;
}

/**
 * `POST /vms` with `initialization.configuration`: ImportVmFromConfiguration, run synchronously
 * (201). The disks the OVF references must already exist with those ids; the engine attaches
 * them itself and only logs an event for those it could not attach, so check afterwards.
 */
export async function createVmFromConfiguration(conn: EngineConnection, v: VmFromConfiguration, opts: EngineCallOptions = {}): Promise<Vm> {
  const body = {
    cluster: { id: v.clusterId },
    name: v.name,
    initialization: { regenerate_ids: v.regenerateIds, configuration: { type: v.configuration.type, data: v.configuration.data } },
  };
  return parseVm(entityOf(await conn.request({ ...opts, method: 'POST', path: '/vms', body }), `new vm ${v.name}`));
}

/** `DELETE /vms/{id}`; `detachOnly` keeps its disks (floating) instead of removing them. */
export async function removeVm(conn: EngineConnection, id: string, opts: EngineCallOptions & { detachOnly?: boolean } = {}): Promise<void> {
  const query = opts.detachOnly !== undefined ? { detach_only: opts.detachOnly } : undefined;
  await conn.request({ ...opts, method: 'DELETE', path: `/vms/${seg(id)}`, query });
}

/** Polls until the VM no longer exists (the engine may finish a removal in the background). */
export async function waitForVmGone(conn: EngineConnection, id: string, opts: PollOptions): Promise<void> {
  await pollUntil(
    conn,
    {
      what: `vm ${id} going away`,
      read: (call) => getVm(conn, id, call),
      done: () => false,
      last: (vm) => `last status: ${vm?.status ?? 'not read'}`,
      notFoundIsAnswer: true,
    },
    opts,
  );
}
