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
  catalog: { vmsWithPoints(): Map<string, number>; lastPointByVm(vmIds: string[]): Map<string, PointSummary> };
  repository: Pick<Repository, 'readManifest'>;
  permits: Pick<Permits, 'isBackupAdmin' | 'requireBackupAdmin'>;
  log: Logger;
}

export class DeletedVms {
  private readonly gone = new TtlCache<boolean>(10_000);

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

  /** The same for a principal without a request (the live channel). */
  async seenBy(principal: Principal, vmId: string): Promise<boolean> {
    if (!this.deps.catalog.vmsWithPoints().has(vmId)) return false;
    return (await this.deps.permits.isBackupAdmin(principal)) && (await this.isDeleted(vmId));
  }

  /** Of the VMs with points outside `visible`, those the engine no longer has — for a backup
   *  admin (their jobs, e.g. the restore bringing one back, are theirs to follow); none for
   *  anyone else. */
  async idsSeenBy(principal: Principal, visible: ReadonlySet<string>): Promise<string[]> {
    if (!(await this.deps.permits.isBackupAdmin(principal))) return [];
    const ids: string[] = [];
    for (const id of this.deps.catalog.vmsWithPoints().keys()) if (!visible.has(id) && (await this.isDeleted(id))) ids.push(id);
    return ids;
  }

  /** Every VM with points that the engine no longer has, newest point and VM definition each. */
  async list(): Promise<DeletedVm[]> {
    const present = new Set((await this.deps.serviceEngine.listVms()).map((v) => v.id));
    const counts = this.deps.catalog.vmsWithPoints();
    const ids = [...counts.keys()].filter((id) => !present.has(id));
    const last = this.deps.catalog.lastPointByVm(ids);
    const vms: DeletedVm[] = [];
    for (const id of ids) {
      const point = last.get(id);
      if (!point) continue;
      vms.push({ id, name: point.vmName, pointCount: counts.get(id) ?? 0, lastPoint: point, ovf: await this.ovfOf(point) });
      this.gone.set(id, true, GONE_TTL_MS);
    }
    return vms.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
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
