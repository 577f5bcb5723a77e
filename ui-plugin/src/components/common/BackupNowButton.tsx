import { Button } from '@patternfly/react-core';
import { useState } from 'react';
import type { Job } from '../../../../backend/src/api/contract';
import { errorReason } from '../../logic/errorText';
import { useApp } from '../AppContext';

/** Starts a backup of one VM from inside a page; the WebAdmin toast says what happened. */
export function BackupNowButton({ vm, onStarted, variant = 'secondary' }: { vm: { id: string; name: string }; onStarted?: (job: Job) => void; variant?: 'primary' | 'secondary' | 'link' }) {
  const { client, bridge, t } = useApp();
  const [busy, setBusy] = useState(false);
  const start = (): void => {
    setBusy(true);
    client.vmBackupStart(vm.id).then(
      (res) => {
        setBusy(false);
        onStarted?.(res.job);
        bridge.toast('info', t(res.joined ? 'toastBackupJoined' : 'toastBackupStarted', { vm: vm.name }));
      },
      (err: unknown) => {
        setBusy(false);
        bridge.toast('danger', t('toastBackupStartFailed', { vm: vm.name, reason: errorReason(err) }));
      },
    );
  };
  return (
    <Button id={`backup-now-${vm.id}`} variant={variant} isInline={variant === 'link'} isLoading={busy} isDisabled={busy} onClick={start} aria-label={t('backupNowOf', { vm: vm.name })}>
      {t('backupNowButton')}
    </Button>
  );
}
