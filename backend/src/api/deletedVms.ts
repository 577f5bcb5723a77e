import type { Response } from 'express';
import { pointDetail, type PointSummary } from '../catalog';
import { isAppError } from '../errors';
import type { DeletedVm } from './contract';
import type { Logger } from 'pino';
import type { EngineClient } from '../engine';
import type { Repository } from '../repository';
import type { Permits } from './permits';
import { principalOf } from './middleware';
import type { Principal } from './auth';
import { TtlCache } from './ttlCache';

/** How long "the engine has no such VM" is believed (the service account is asked again after). */
const GONE_TTL_MS = 30_000;
/** How long the service account's list of every VM is reused by a backup admin's job list: as
 *  long as a user's own VM list (Authenticator), so a VM deleted meanwhile joins both together. */
const PRESENT_TTL_MS = 5_000;

/**
 * VMs the engine no longer has, whose points the repository still holds: the disaster-recovery
 * case. Only backup admins see them (nobody else holds a permit on a VM that no longer exists):
 * a "Deleted VMs" list (routes/deletedVms.ts), and their points through the same routes as any
 * point — restore as a new VM, or back under the original ids when nothing in the engine uses
 * them.
 */
export interface DeletedVmsDeps {
  /** The service account: it sees every VM the engine has. */
  serviceEngine: Pick<EngineClient, 'getVm' | 'listVms'>;
  /** The parts of ApiCatalog (deps.ts) read here. */
  catalog: {
    vmsWithPoints(): Map<string, number>;
    pointCountByVm(vmIds: string[]): Map<string, number>;
    lastPointByVm(vmIds: string[]): Map<string, PointSummary>;
  };
  repository: Pick<Repository, 'readManifest'>;
  permits: Pick<Permits, 'isBackupAdmin' | 'requireBackupAdmin'>;
  log: Logger;
}

export class DeletedVms {
  private readonly gone = new TtlCache<boolean>(10_000);
  /** The ids of every VM the engine has (one entry): one listing answers for all VMs at once. */
  private readonly present = new TtlCache<ReadonlySet<string>>(1);

  constructor(private readonly deps: DeletedVmsDeps) {}

  /** Whether the engine (the service account, which sees every VM) has no VM of this id. */
  isDeleted(vmId: string): Promise<boolean> {
    return this.gone.load(vmId, GONE_TTL_MS, () =>
      this.deps.serviceEngine.getVm(vmId).then(
        () => false,
        (err: unknown) => {
          if (isAppError(err, 'ENGINE_NOT_FOUND')) return true;
          throw err;
        },
      ),
    );
  }

  /** The caller is a backup admin and the VM, whose points the repository holds, is gone from
   *  the engine: its points are theirs to see. (An id nobody ever backed up is no deleted VM.) */
  adminSeesDeleted(res: Response, vmId: string): Promise<boolean> {
    return this.seenBy(principalOf(res), vmId);
  }

  /** The same for a principal without a request (the live channel, which asks for every event of
   *  a VM the client does not see): the cached admin answer first, then one VM's point count. */
  async seenBy(principal: Principal, vmId: string): Promise<boolean> {
    if (!(await this.deps.permits.isBackupAdmin(principal))) return false;
    if ((this.deps.catalog.pointCountByVm([vmId]).get(vmId) ?? 0) === 0) return false;
    return this.isDeleted(vmId);
  }

  /** Of the VMs with points outside `visible`, those the engine no longer has — for a backup
   *  admin (their jobs, e.g. the restore bringing one back, are theirs to follow); none for
   *  anyone else. One listing of the engine's VMs answers for all of them (every job list of a
   *  backup admin asks). */
  async idsSeenBy(principal: Principal, visible: ReadonlySet<string>): Promise<string[]> {
    if (!(await this.deps.permits.isBackupAdmin(principal))) return [];
    const withPoints = this.deps.catalog.vmsWithPoints();
    const outside = [...withPoints.keys()].filter((id) => !visible.has(id));
    if (outside.length === 0) return [];
    const present = await this.present.load('all', PRESENT_TTL_MS, () => this.listPresent(withPoints.keys()));
    return outside.filter((id) => !present.has(id));
  }

  /** Every VM with points that the engine no longer has, newest point and VM definition each
   *  (the view asks the engine afresh: it is where an admin looks after deleting or restoring). */
  async list(): Promise<DeletedVm[]> {
    const counts = this.deps.catalog.vmsWithPoints();
    const present = await this.listPresent(counts.keys());
    this.present.set('all', present, PRESENT_TTL_MS);
    const ids = [...counts.keys()].filter((id) => !present.has(id));
    const last = this.deps.catalog.lastPointByVm(ids);
    const vms: DeletedVm[] = [];
    for (const id of ids) {
      const point = last.get(id);
      if (!point) continue;
      vms.push({ id, name: point.vmName, pointCount: counts.get(id) ?? 0, lastPoint: point, ovf: await this.ovfOf(point) });
    }
    return vms.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** The ids of every VM the engine has. What the listing says of the VMs with points is what
   *  isDeleted answers from then on: gone ones are remembered, present ones asked afresh (a
   *  restore may just have brought one back), so one VM never looks deleted in one route and
   *  present in the next. */
  private async listPresent(withPoints: Iterable<string>): Promise<ReadonlySet<string>> {
    const present = new Set((await this.deps.serviceEngine.listVms()).map((v) => v.id));
    for (const id of withPoints) {
      if (present.has(id)) this.gone.delete(id);
      else this.gone.set(id, true, GONE_TTL_MS);
    }
    return present;
  }

  private async ovfOf(point: PointSummary): Promise<DeletedVm['ovf']> {
    try {
      return pointDetail(point, await this.deps.repository.readManifest(point.id), (msg) => this.deps.log.warn({ pointId: point.id }, msg)).ovf;
    } catch (err) {
      // listed all the same: its points are the point of the view
      this.deps.log.warn({ pointId: point.id, err: String(err) }, 'the last point of a deleted vm cannot be read');
      return null;
    }
  }
}
