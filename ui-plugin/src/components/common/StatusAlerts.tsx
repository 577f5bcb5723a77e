// The page-level alerts: a failed load with a retry, and the live stream down or refused.
import { Alert, AlertActionLink } from '@patternfly/react-core';
import type { StreamStatus } from '../../services/eventStream';
import { useTexts } from '../../context/appContext';

/** A failed load: what failed in words a WebAdmin user can act on, and a retry. */
export function ServiceErrorAlert({ error, onRetry, id = 'service-error' }: { error: unknown; onRetry: () => void; id?: string }) {
  const { t, errorText } = useTexts();
  if (!error) return null;
  const kind = (error as { kind?: string }).kind;
  return (
    <Alert
      id={id}
      data-kind={kind ?? 'unknown'}
      variant="danger"
      isInline
      title={errorText(error)}
      actionLinks={<AlertActionLink onClick={onRetry}>{t('retry')}</AlertActionLink>}
    />
  );
}

/** Shown while the live-event socket is down (service stopped, network) or refuses the token. */
export function LiveStatusAlert({ status }: { status: StreamStatus }) {
  const { t } = useTexts();
  if (status !== 'reconnecting' && status !== 'unauthorized') return null;
  return (
    <Alert
      id="live-status"
      data-status={status}
      variant={status === 'unauthorized' ? 'danger' : 'warning'}
      isInline
      isPlain
      title={status === 'unauthorized' ? t('liveUnauthorized') : t('reconnecting')}
    />
  );
}
