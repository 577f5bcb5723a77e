// The Restore… dialog's running restore: live progress, then what it created.
import { Alert, AlertActionLink, Card, CardBody, CardTitle } from '@patternfly/react-core';
import type { Job } from '../../../../backend/src/api/contract';
import { restoredDiskNames } from '../../logic/jobText';
import { useTexts } from '../../context/appContext';
import { useCancelJob } from '../../hooks/useJobActions';
import { JobProgress } from '../common/JobProgress';

/** The restore started from the dialog: live progress, then what it created (or why not). */
export function RestoreProgress({ job, onShowVm }: { job: Job; onShowVm: (vmName: string) => void }) {
  const { t } = useTexts();
  // a restore is its requester's to cancel; anyone else's is refused by the service
  const cancelJob = useCancelJob(null, () => undefined);
  const restored = job.result?.restored;
  const disks = restoredDiskNames(job);
  const newVm = job.restore?.mode !== 'disks' && restored?.vmName ? restored.vmName : null;
  const allVerified = (restored?.disks.length ?? 0) > 0 && restored?.disks.every((d) => d.verified);
  return (
    <Card id="restore-progress" data-job={job.id} data-state={job.state} isCompact>
      <CardTitle>{t('restoreProgressTitle')}</CardTitle>
      <CardBody>
        <JobProgress job={job} cancel={cancelJob} />
        {job.state === 'succeeded' ? (
          <Alert
            id="restore-result"
            data-vm-id={restored?.vmId ?? ''}
            data-vm-name={restored?.vmName ?? ''}
            variant="success"
            isInline
            title={newVm ? t('restoreSucceededVm', { vm: newVm, disks }) : restored?.vmName ? t('restoreSucceededAttached', { vm: restored.vmName, disks }) : t('restoreSucceededDisks', { disks })}
            actionLinks={
              restored?.vmName ? (
                <AlertActionLink id="restore-show-vm" onClick={() => onShowVm(restored.vmName ?? '')}>
                  {t('restoreShowVm', { vm: restored.vmName })}
                </AlertActionLink>
              ) : undefined
            }
          >
            {allVerified ? t('restoreVerified') : null}
          </Alert>
        ) : null}
        {job.error ? <Alert id="restore-job-error" variant="danger" isInline isPlain title={job.error.message} /> : null}
      </CardBody>
    </Card>
  );
}
