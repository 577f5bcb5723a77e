/**
 * Which VMs a policy's selection means now, asked of the engine with the service account (never
 * a portal user's): explicit ids, an engine tag, or an engine search.
 */
import type { NewEvent, Tag, Vm } from '../engine';
import { AppError, isAppError } from '../errors';
import type { PolicySelection } from './model';

/** What the schedulers ask of the engine, as the service account. */
export interface SchedulerEngine {
  findVms(search: string): Promise<Vm[]>;
  findVmsByTag(tag: string): Promise<Vm[]>;
  findTagByName(name: string): Promise<Tag | undefined>;
  getVm(id: string): Promise<Vm>;
  addEvent(ev: NewEvent): Promise<unknown>;
}

/** The VMs a selection means now. VM ids that no longer exist are returned apart (a run reports
 *  them skipped). NOT_FOUND when the selection's tag is gone. */
export async function selectVms(engine: SchedulerEngine, sel: PolicySelection): Promise<{ vms: Vm[]; missing: string[] }> {
  if ('vmIds' in sel) {
    const vms: Vm[] = [];
    const missing: string[] = [];
    for (const id of sel.vmIds) {
      try {
        vms.push(await engine.getVm(id));
      } catch (err) {
        if (!isAppError(err, 'ENGINE_NOT_FOUND')) throw err;
        missing.push(id);
      }
    }
    return { vms, missing };
  }
  if ('tag' in sel) {
    if (!(await engine.findTagByName(sel.tag))) throw new AppError('NOT_FOUND', `the engine has no tag "${sel.tag}" (any more)`);
    return { vms: sortByName(await engine.findVmsByTag(sel.tag)), missing: [] };
  }
  return { vms: sortByName(await engine.findVms(sel.search)), missing: [] };
}

function sortByName(vms: Vm[]): Vm[] {
  return [...vms].sort((a, b) => a.name.localeCompare(b.name));
}
