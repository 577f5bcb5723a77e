// One job's progress bar, backup or restore (percent and ETA from logic/progress.ts), with Cancel while active.
import { Flex, FlexItem, Progress, ProgressMeasureLocation, ProgressVariant } from '@patternfly/react-core';
import type { Job } from '../../../../backend/src/api/contract';
import { keyOf } from '../../intl/messages';
import { formatBytes, formatDuration } from '../../logic/format';
import { isActive, jobEtaSeconds, jobPercent } from '../../logic/progress';
import { useTexts } from '../../context/appContext';
import type { ActionState } from '../../hooks/useAction';
import { ActionButton } from './ActionButton';

/** One job's progress bar (backup or restore): phase, bytes, disks, rate and ETA; cancel while it is active
 *  (disabled with the reason when the job is not the user's to cancel). */
export function JobProgress({ job, cancel }: { job: Job; cancel?: (job: Job) => ActionState }) {
  const { t, locale } = useTexts();
  const pct = jobPercent(job);
  const p = job.progress;
  const phase = p?.phase ?? (job.state === 'queued' ? 'queued' : 'preparing');
  const phaseText = job.state === 'succeeded' ? t('stateSucceeded') : job.state === 'running' || job.state === 'queued' ? t(keyOf('phase', phase), { disk: p?.disk ?? '' }) : t(keyOf('state', job.state));
  const eta = jobEtaSeconds(p);
  const r = job.result;
  const restore = job.kind === 'restore';
  const detail = r
    ? restore
      ? t('progressRestoreResult', { uploaded: formatBytes(r.bytesRead, locale), duration: formatDuration(r.durationMs / 1000) })
      : t('progressResult', { read: formatBytes(r.bytesRead, locale), stored: formatBytes(r.bytesStored, locale), duration: formatDuration(r.durationMs / 1000) })
    : p && isActive(job)
    ? t(eta === null ? 'progressDetailNoEta' : 'progressDetail', {
        done: formatBytes(p.bytesDone, locale),
        total: formatBytes(p.bytesTotal, locale),
        disksDone: p.disksDone,
        disksTotal: p.disksTotal,
        rate: formatBytes(p.rateBytesPerSec, locale),
        eta: formatDuration(eta),
      })
    : undefined;
  const variant = job.state === 'succeeded' ? ProgressVariant.success : job.state === 'failed' || job.state === 'interrupted' ? ProgressVariant.danger : undefined;
  return (
    <Flex alignItems={{ default: 'alignItemsCenter' }} flexWrap={{ default: 'nowrap' }}>
      <FlexItem grow={{ default: 'grow' }}>
        <Progress
          id={`job-progress-${job.id}`}
          data-state={job.state}
          value={pct}
          title={restore ? `${t('jobKindRestore')} ${job.vmName}${job.restore?.target ? ` → ${job.restore.target}` : ''} — ${phaseText}` : `${job.vmName} — ${phaseText}`}
          helperText={detail}
          measureLocation={ProgressMeasureLocation.outside}
          variant={variant}
          aria-label={t(restore ? 'restoreProgressLabel' : 'progressLabel', { vm: job.vmName })}
        />
      </FlexItem>
      {cancel && isActive(job) && !job.cancelRequested ? (
        <FlexItem>
          <ActionButton id={`job-cancel-${job.id}`} variant="link" isInline action={cancel(job)} aria-label={t('cancelJobLabel', { vm: job.vmName })}>
            {t('cancelJob')}
          </ActionButton>
        </FlexItem>
      ) : null}
    </Flex>
  );
}
