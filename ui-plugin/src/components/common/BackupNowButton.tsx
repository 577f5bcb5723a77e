/** Backup now for one VM from inside a page (useBackupNow starts it; the WebAdmin toast says what happened). */
import { Button } from '@patternfly/react-core';
import { useTexts } from '../../context/appContext';
import { useBackupNow } from '../../hooks/useJobActions';

export function BackupNowButton({ vm, variant = 'secondary' }: { vm: { id: string; name: string }; variant?: 'primary' | 'secondary' | 'link' }) {
  const { t } = useTexts();
  const backup = useBackupNow(vm);
  return (
    <Button id={`backup-now-${vm.id}`} variant={variant} isInline={variant === 'link'} isLoading={backup.busy} isDisabled={backup.busy} onClick={backup.run} aria-label={t('backupNowOf', { vm: vm.name })}>
      {t('backupNowButton')}
    </Button>
  );
}
