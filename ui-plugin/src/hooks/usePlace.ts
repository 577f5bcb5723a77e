/**
 * The Backup place's data: the live stream, the VMs, the repository's status, every VM's
 * points and the job history, refetched when the socket comes back, a point is added or a job
 * ends; who the user is (whoami: a backup admin or not); and the place-wide actions (cancel a
 * job, open the Restore… dialog on a point). The tabs' own data (policies, audit, deleted VMs)
 * is loaded by their hooks on the same `refresh` versions.
 */
import { useCallback, useMemo } from 'react';
import type { Job, PointSummary, RepositoryStatus, VmSummary, WhoAmI } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import type { StreamStatus } from '../services/eventStream';
import type { ActionState } from './useAction';
import { useCancelJob } from './useJobActions';
import { useJobHistory, type JobHistory } from './useJobHistory';
import { useLive } from './useLive';
import { useLoader } from './useLoader';
import { useWhoAmI } from './useWhoAmI';

export interface PlaceData {
  status: StreamStatus;
  /** Changes whenever what the service lists may have changed: loaders depending on it refetch. */
  refresh: unknown[];
  /** null until the first list arrived. */
  vms: VmSummary[] | null;
  repository: RepositoryStatus | null;
  points: PointSummary[] | null;
  history: JobHistory;
  /** The first failure of the place's loads (the alert at the top), null when all are well. */
  error: unknown;
  retry: () => void;
  /** Stable (an effect may depend on it): the VMs' summaries again (policy changed, run ended). */
  reloadVms: () => void;
  /** Points change without an event of their own (a policy's retention locks or prunes them). */
  reloadPoints: () => void;
  /** The user as the service knows them; null until whoami answered. */
  me: WhoAmI | null;
  /** A VM of the list by id (its access flags); undefined when the list does not name it. */
  vmOf: (vmId: string) => VmSummary | undefined;
  cancelJob: (job: Job) => ActionState;
  openRestore: (point: PointSummary) => void;
}

export function usePlace(): PlaceData {
  const { client, bridge, t } = useApp();
  const live = useLive();
  const refresh = [live.onlineVersion, live.jobs.pointsVersion, live.finishedVersion];
  const vms = useLoader(() => client.vmList(), refresh);
  const repository = useLoader(() => client.repositoryGet(), refresh);
  const points = useLoader(async (): Promise<PointSummary[]> => {
    const list = vms.data?.vms.filter((v) => v.pointCount > 0) ?? [];
    const all = await Promise.all(list.map((v) => client.vmPointListAll(v.id)));
    return all.flat();
  }, [vms.data]);
  const history = useJobHistory(live);
  const me = useWhoAmI();
  const byId = useMemo(() => new Map((vms.data?.vms ?? []).map((v) => [v.id, v])), [vms.data]);
  const vmOf = useCallback((id: string) => byId.get(id), [byId]);
  const cancelJob = useCancelJob(me, vmOf);
  return {
    status: live.status,
    refresh,
    vms: vms.data?.vms ?? null,
    repository: repository.data,
    points: points.data,
    history,
    error: vms.error || repository.error || history.error || points.error,
    retry: () => {
      vms.reload();
      repository.reload();
      history.reload();
    },
    reloadVms: vms.reload,
    reloadPoints: points.reload,
    me,
    vmOf,
    cancelJob,
    openRestore: (p) => bridge.openRestore({ id: p.vmId, name: p.vmName }, p.id, t),
  };
}
