/**
 * A VM's Backups tab data: the live stream, the VM's summary (chain health, visibility to this
 * user), its points and its job history, refetched when the socket comes back, a point is
 * added or a job ends; and the tab's actions (cancel a job — disabled with the reason when it is
 * not the user's —, open Restore… on a point).
 */
import type { Job, PointSummary, VmSummary } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import type { StreamStatus } from '../services/eventStream';
import type { ActionState } from './useAction';
import { useCancelJob } from './useJobActions';
import { useJobHistory, type JobHistory } from './useJobHistory';
import { useLive } from './useLive';
import { useLoader } from './useLoader';
import { useWhoAmI } from './useWhoAmI';

export interface VmBackups {
  status: StreamStatus;
  /** The VM as the service lists it; null until loaded, or when it is not visible to the user. */
  vm: VmSummary | null;
  /** The service's VM list came back without this VM: the user may not see it there. */
  notVisible: boolean;
  points: PointSummary[] | null;
  pointsLoading: boolean;
  history: JobHistory;
  /** The tab's last backup job (restores and verifies of its points are listed with its jobs only). */
  lastJob: Job | null;
  error: unknown;
  retry: () => void;
  cancelJob: (job: Job) => ActionState;
  openRestore: (point: PointSummary) => void;
}

export function useVmBackups(vmId: string): VmBackups {
  const { client, bridge, t } = useApp();
  const live = useLive();
  const refresh = [vmId, live.onlineVersion, live.jobs.pointsVersion, live.finishedVersion];
  const vms = useLoader(() => client.vmList(), refresh);
  const points = useLoader(() => client.vmPointListAll(vmId), refresh);
  const history = useJobHistory(live, vmId);
  const vm = vms.data?.vms.find((v) => v.id === vmId) ?? null;
  const cancelJob = useCancelJob(useWhoAmI(), (id) => (vm && vm.id === id ? vm : undefined));
  const notVisible = vms.data !== null && vm === null;
  return {
    status: live.status,
    vm,
    notVisible,
    points: points.data,
    pointsLoading: points.loading,
    history,
    lastJob: history.jobs.find((j) => j.kind === 'backup') ?? null,
    error: vms.error || (notVisible ? null : points.error) || history.error,
    retry: () => {
      vms.reload();
      points.reload();
      history.reload();
    },
    cancelJob,
    openRestore: (p) => bridge.openRestore({ id: vmId, name: vm?.name ?? p.vmName }, p.id, t),
  };
}
