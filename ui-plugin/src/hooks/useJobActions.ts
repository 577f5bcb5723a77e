/**
 * Starting and cancelling jobs from inside a page: Backup now, Verify (a point, the whole
 * repository), Cancel. Each says what happened in a WebAdmin toast; the job itself then
 * follows over the live stream (useLive), so nothing here reloads.
 */
import type { Job, PointSummary } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { errorReason } from '../logic/errorText';
import { useAction, type ActionState } from './useAction';

/** Backup now for one VM. */
export function useBackupNow(vm: { id: string; name: string }): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.vmBackupStart(vm.id),
    (res) => bridge.toast('info', t(res.joined ? 'toastBackupJoined' : 'toastBackupStarted', { vm: vm.name })),
    (err) => bridge.toast('danger', t('toastBackupStartFailed', { vm: vm.name, reason: errorReason(err) })),
  );
}

/** Queues a verify of one point; its job shows in the jobs list and its end in a toast. */
export function useVerifyPoint(point: Pick<PointSummary, 'id' | 'vmName'>): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.pointVerify(point.id),
    () => bridge.toast('info', t('toastVerifyStarted', { vm: point.vmName })),
    (err) => bridge.toast('danger', t('toastVerifyStartFailed', { vm: point.vmName, reason: errorReason(err) })),
  );
}

/** Queues a verify of every point (the service joins a pending one); its end shows as a toast. */
export function useVerifyRepository(): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.repositoryVerify(),
    (res) => bridge.toast('info', t('toastVerifyStarted', { vm: res.job.vmName })),
    (err) => bridge.toast('danger', t('toastVerifyStartFailed', { vm: 'repository', reason: errorReason(err) })),
  );
}

/** Asks the service to cancel a job; the result arrives as a `job` event. */
export function useCancelJob(): (job: Job) => void {
  const { client, bridge } = useApp();
  return (job) => {
    client.jobCancel(job.id).catch((err: unknown) => bridge.toast('danger', `${job.vmName}: ${errorReason(err)}`));
  };
}
