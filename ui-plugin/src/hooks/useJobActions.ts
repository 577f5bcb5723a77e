/**
 * Starting and cancelling jobs from inside a page: Backup now, Verify (a point, the whole
 * repository), Cancel. Each is disabled with its reason when the user may not do it
 * (logic/access.ts), and says what happened in a WebAdmin toast; the job itself then follows
 * over the live stream (useLive), so nothing here reloads.
 */
import type { Job, PointSummary, StartBackupRequest } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { backupDenial, bootCheckDenial, cancelDenial, deniedText, verifyDenial, adminDenial, type Caller, type VmRef } from '../logic/access';
import { errorReason } from '../logic/errorText';
import { useAction, useKeyedAction, type ActionState } from './useAction';

/** Backup now for one VM (`access` from the VM list; unknown: the service decides), with what
 *  the dialog chose; `done` follows a started (or joined) backup. */
export function useBackupNow(vm: VmRef, body: StartBackupRequest = {}, done?: () => void): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.vmBackupStart(vm.id, body),
    (res) => {
      bridge.toast('info', t(res.joined ? 'toastBackupJoined' : 'toastBackupStarted', { vm: vm.name }));
      done?.();
    },
    (err) => bridge.toast('danger', t('toastBackupStartFailed', { vm: vm.name, reason: errorReason(err) })),
    deniedText(t, backupDenial(vm)),
  );
}

/** Queues a verify of one point; its job shows in the jobs list and its end in a toast. */
export function useVerifyPoint(point: Pick<PointSummary, 'id' | 'vmName'>, vm: VmRef | undefined): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.pointVerify(point.id),
    () => bridge.toast('info', t('toastVerifyStarted', { vm: point.vmName })),
    (err) => bridge.toast('danger', t('toastVerifyStartFailed', { vm: point.vmName, reason: errorReason(err) })),
    deniedText(t, verifyDenial(vm)),
  );
}

/** Test boot: queues a boot check of one point (one runs at a time on the backup server); the
 *  job shows in the jobs list, its verdict in a toast and in the point's Boot column. */
export function useBootCheckPoint(point: Pick<PointSummary, 'id' | 'vmName'>, vm: VmRef | undefined): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.pointBootCheck(point.id),
    () => bridge.toast('info', t('toastBootCheckStarted', { vm: point.vmName })),
    (err) => bridge.toast('danger', t('toastBootCheckStartFailed', { vm: point.vmName, reason: errorReason(err) })),
    deniedText(t, bootCheckDenial(vm)),
  );
}

/** Queues a verify of every point (the service joins a pending one): backup admins only. */
export function useVerifyRepository(me: Caller): ActionState {
  const { client, bridge, t } = useApp();
  return useAction(
    () => client.repositoryVerify(),
    (res) => bridge.toast('info', t('toastVerifyStarted', { vm: res.job.vmName })),
    (err) => bridge.toast('danger', t('toastVerifyStartFailed', { vm: 'repository', reason: errorReason(err) })),
    deniedText(t, adminDenial(me, 'deniedVerifyRepository')),
  );
}

/** Cancel per job (own job vs someone else's: logic/access.ts); the result arrives as a `job` event. */
export function useCancelJob(me: Caller, vmOf: (vmId: string) => VmRef | undefined): (job: Job) => ActionState {
  const { client, bridge, t } = useApp();
  return useKeyedAction(
    (job: Job) => job.id,
    (job) => client.jobCancel(job.id),
    () => undefined,
    (job, err) => bridge.toast('danger', `${job.vmName}: ${errorReason(err)}`),
    (job) => deniedText(t, cancelDenial(job, me, vmOf(job.vmId))),
  );
}
