// Texts about jobs and their points: the toast of a finished job, the disks a restore created, a point's type.
import type { Job, PointSummary } from '../../../backend/src/api/contract';
import type { MessageKey, Translate } from '../intl/messages';
import { formatBytes, formatDateTime } from './format';

export type ToastSeverity = 'info' | 'success' | 'warning' | 'danger';

/** A point's boot check in words: Boot OK / Boot failed (why) / Timed out / not tested. */
export function bootStateText(b: { state: 'ok' | 'failed' | 'timeout' } | null, t: Translate, reason?: string): string {
  if (!b) return t('bootNotTested');
  if (b.state === 'ok') return t('bootOk');
  if (b.state === 'timeout') return t('bootTimeout');
  return reason ? t('bootFailedWhy', { reason }) : t('bootFailed');
}

/** Full, incremental, or both (a point's disks may differ: one got a full copy, why is per disk). */
export function pointTypeKey(point: { disks: ReadonlyArray<Pick<PointSummary['disks'][number], 'mode'>> }): MessageKey {
  const modes = new Set(point.disks.map((d) => d.mode));
  return modes.size > 1 ? 'typeMixed' : modes.has('full') ? 'typeFull' : 'typeIncremental';
}

/** Names of the disks a restore created, as the engine knows them. */
export function restoredDiskNames(job: Pick<Job, 'result'>): string {
  return (job.result?.restored?.disks ?? []).map((d) => d.name).join(', ');
}

/**
 * The WebAdmin toast for a job that just finished: backups name the point, restores the VM or
 * disks they created (WebAdmin toasts are plain text: the names are what leads to them).
 */
export function finishedJobToast(job: Job, t: Translate, locale: string): { severity: ToastSeverity; text: string } {
  const vm = job.vmName;
  if (job.kind === 'verify') {
    const v = job.result?.verified;
    if (job.state === 'succeeded' && v) {
      if (v.damaged.length > 0) return { severity: 'danger', text: t('toastVerifyDamaged', { vm, points: v.points, damaged: v.damaged.length }) };
      return { severity: 'success', text: t('toastVerifyOk', { vm, points: v.points }) };
    }
    if (job.state === 'cancelled') return { severity: 'warning', text: t('toastVerifyCancelled', { vm }) };
    return { severity: 'danger', text: t('toastVerifyFailed', { vm, reason: job.error?.message ?? job.state }) };
  }
  if (job.kind === 'bootcheck') {
    const b = job.result?.bootCheck;
    if (job.state === 'succeeded' && b) return b.state === 'ok' ? { severity: 'success', text: t('toastBootCheckOk', { vm, reason: b.reason }) } : { severity: 'danger', text: t('toastBootCheckBad', { vm, reason: b.reason }) };
    if (job.state === 'cancelled') return { severity: 'warning', text: t('toastBootCheckCancelled', { vm }) };
    return { severity: 'danger', text: t('toastBootCheckFailed', { vm, reason: job.error?.message ?? job.state }) };
  }
  if (job.kind === 'restore') {
    const restored = job.result?.restored;
    if (job.state === 'succeeded') {
      const disks = restoredDiskNames(job);
      if (job.restore?.mode !== 'disks' && restored?.vmName) return { severity: 'success', text: t('toastRestoreSucceededVm', { vm, target: restored.vmName, disks }) };
      if (restored?.vmName) return { severity: 'success', text: t('toastRestoreSucceededAttached', { vm, target: restored.vmName, disks }) };
      return { severity: 'success', text: t('toastRestoreSucceededDisks', { vm, disks }) };
    }
    if (job.state === 'cancelled') return { severity: 'warning', text: t('toastRestoreCancelled', { vm }) };
    if (job.state === 'interrupted') return { severity: 'danger', text: t('toastRestoreInterrupted', { vm }) };
    return { severity: 'danger', text: t('toastRestoreFailed', { vm, reason: job.error?.message ?? job.state }) };
  }
  if (job.state === 'succeeded') {
    return { severity: 'success', text: t('toastJobSucceeded', { vm, time: formatDateTime(job.finishedAt, locale), stored: formatBytes(job.result?.bytesStored ?? 0, locale) }) };
  }
  if (job.state === 'cancelled') return { severity: 'warning', text: t('toastJobCancelled', { vm }) };
  if (job.state === 'interrupted') return { severity: 'danger', text: t('toastJobInterrupted', { vm }) };
  return { severity: 'danger', text: t('toastJobFailed', { vm, reason: job.error?.message ?? job.state }) };
}
