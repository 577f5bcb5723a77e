// A point's boot check in the points tables: its state (a button opening the screenshot and the
// reason), and Test boot, which queues a boot check of the point.
import { useState } from 'react';
import { Alert, Button, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Label, Modal, ModalBody, ModalFooter, ModalHeader, Spinner } from '@patternfly/react-core';
import type { PointSummary } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useBootCheck } from '../../hooks/useBootCheck';
import { useBootCheckPoint } from '../../hooks/useJobActions';
import type { VmRef } from '../../logic/access';
import { formatDateTime, formatDuration } from '../../logic/format';
import { bootStateText } from '../../logic/jobText';
import { ActionButton } from './ActionButton';

const COLOR = { ok: 'green', failed: 'red', timeout: 'orange' } as const;

/** Boot OK / Boot failed / Timed out (a button: the modal with the screen and why), or "not tested". */
export function BootStateCell({ point }: { point: PointSummary }) {
  const { t, locale } = useTexts();
  const [open, setOpen] = useState(false);
  const b = point.bootCheck ?? null;
  if (!b) {
    return (
      <span id={`point-boot-${point.id}`} data-boot="none">
        {bootStateText(null, t)}
      </span>
    );
  }
  return (
    <>
      <Button id={`point-boot-${point.id}`} data-boot={b.state} variant="plain" isInline onClick={() => setOpen(true)} aria-label={t('bootStateOf', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })}>
        <Label isCompact color={COLOR[b.state]}>
          {bootStateText(b, t)}
        </Label>
      </Button>
      {open ? <BootCheckModal point={point} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

/** Test boot for one point. */
export function TestBootButton({ point, vm }: { point: PointSummary; vm: VmRef | undefined }) {
  const { t, locale } = useTexts();
  const action = useBootCheckPoint(point, vm);
  return (
    <ActionButton id={`point-testboot-${point.id}`} variant="link" isInline action={action} aria-label={t('testBootPointOf', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })}>
      {t('testBootButton')}
    </ActionButton>
  );
}

function BootCheckModal({ point, onClose }: { point: PointSummary; onClose: () => void }) {
  const { t, locale, errorText } = useTexts();
  const { data, error, loading } = useBootCheck(point.id);
  const r = data?.record ?? null;
  return (
    <Modal id="bootcheck-dialog" isOpen variant="medium" onClose={onClose} aria-labelledby="bootcheck-dialog-title">
      <ModalHeader title={t('bootCheckTitle', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })} labelId="bootcheck-dialog-title" />
      <ModalBody>
        {loading && !data ? <Spinner size="lg" aria-label={t('loading')} /> : null}
        {error ? <Alert id="bootcheck-error" variant="danger" isInline title={errorText(error)} /> : null}
        {data && !r ? <p id="bootcheck-none">{t('bootCheckNone')}</p> : null}
        {r ? (
          <>
            <DescriptionList isCompact isHorizontal>
              <DescriptionListGroup>
                <DescriptionListTerm>{t('bootCheckReason')}</DescriptionListTerm>
                <DescriptionListDescription id="bootcheck-state" data-boot={r.state}>
                  {bootStateText(r, t, r.reason)}
                  {r.state === 'ok' ? ` — ${r.reason}` : ''}
                </DescriptionListDescription>
              </DescriptionListGroup>
              {r.matchedLine !== null ? (
                <DescriptionListGroup>
                  <DescriptionListTerm>{t('bootCheckMatched')}</DescriptionListTerm>
                  <DescriptionListDescription>
                    <code id="bootcheck-matched">{r.matchedLine}</code>
                  </DescriptionListDescription>
                </DescriptionListGroup>
              ) : null}
              <DescriptionListGroup>
                <DescriptionListTerm>{t('colTime')}</DescriptionListTerm>
                <DescriptionListDescription id="bootcheck-when">{t('bootCheckWhen', { time: formatDateTime(r.at, locale), duration: formatDuration(r.durationMs / 1000), accel: r.accel.toUpperCase() })}</DescriptionListDescription>
              </DescriptionListGroup>
            </DescriptionList>
            {data?.screenshot ? (
              <img id="bootcheck-screenshot" src={data.screenshot} alt={t('bootCheckScreenshotAlt')} style={{ maxWidth: '100%', marginTop: 16, imageRendering: 'pixelated' }} />
            ) : (
              <p id="bootcheck-no-screenshot">{t('bootCheckNoScreenshot')}</p>
            )}
          </>
        ) : null}
      </ModalBody>
      <ModalFooter>
        <Button id="bootcheck-close" variant="primary" onClick={onClose}>
          {t('close')}
        </Button>
      </ModalFooter>
    </Modal>
  );
}
