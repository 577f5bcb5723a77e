// Small labels shared by the tables: job state, point type and method, chain health, full-backup reason, retention lock.
import { Label } from '@patternfly/react-core';
import type { DiskChainHealth, JobState, PointMethod, PointSummary } from '../../../../backend/src/api/contract';
import { pointMethodKey } from '../../logic/backupChoices';
import LockIcon from '@patternfly/react-icons/dist/esm/icons/lock-icon';
import { keyOf } from '../../intl/messages';
import { formatDateTime } from '../../logic/format';
import { pointTypeKey } from '../../logic/jobText';
import { isLocked } from '../../logic/policyForm';
import { useTexts } from '../../context/appContext';

const STATE_COLOR: Record<JobState, 'blue' | 'green' | 'red' | 'orange' | 'grey'> = {
  queued: 'grey',
  running: 'blue',
  succeeded: 'green',
  failed: 'red',
  cancelled: 'orange',
  interrupted: 'red',
};

export function JobStateLabel({ state, id }: { state: JobState; id?: string }) {
  const { t } = useTexts();
  return (
    <Label id={id} data-state={state} color={STATE_COLOR[state]} isCompact>
      {t(keyOf('state', state))}
    </Label>
  );
}

/** Full / incremental / mixed, from the point's disks. */
export function PointTypeLabel({ point }: { point: PointSummary }) {
  const { t } = useTexts();
  const full = point.disks.some((d) => d.mode === 'full');
  return (
    <Label color={full ? 'purple' : 'teal'} isCompact>
      {t(pointTypeKey(point))}
    </Label>
  );
}

/** QEMU monitor / Engine API: the method that made a point (absent on older points: QEMU). */
export function PointMethodLabel({ method, id }: { method: PointMethod | undefined; id?: string }) {
  const { t } = useTexts();
  return (
    <Label id={id} data-method={method ?? 'qmp'} color={method === 'engine' ? 'blue' : 'grey'} isCompact>
      {t(pointMethodKey(method))}
    </Label>
  );
}

export function ChainLabel({ disk }: { disk: DiskChainHealth }) {
  const { t } = useTexts();
  if (disk.excluded) return <Label isCompact color="grey">{t('chainExcluded')}</Label>;
  return (
    <Label isCompact color={disk.state === 'ok' ? 'green' : 'orange'}>
      {disk.state === 'ok' ? t('chainOk') : t('chainFull')}
    </Label>
  );
}

/** Human reason for a full copy (contract FullReason values). */
export function useReasonText(): (reason: string | null) => string {
  const { t } = useTexts();
  return (reason) => (reason ? t(keyOf('reason', reason)) : '');
}

/** A point's retention lock: a lock icon and "locked until <date>" while it holds; a dash after. */
export function PointLock({ point }: { point: Pick<PointSummary, 'id' | 'lockedUntil'> }) {
  const { t, locale } = useTexts();
  if (!isLocked(point.lockedUntil, Date.now())) return <span id={`point-lock-${point.id}`} data-locked="false">—</span>;
  const time = formatDateTime(point.lockedUntil, locale);
  return (
    <span id={`point-lock-${point.id}`} data-locked="true" title={t('lockedUntilOf', { time })} aria-label={t('lockedUntilOf', { time })}>
      <LockIcon aria-hidden="true" /> {t('lockedUntil', { time })}
    </span>
  );
}
