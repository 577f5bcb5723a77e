/** Backup now for one VM from inside a page (useBackupNow starts it — or says which permit is
 *  missing —; the WebAdmin toast says what happened). */
import { useTexts } from '../../context/appContext';
import { useBackupNow } from '../../hooks/useJobActions';
import type { VmRef } from '../../logic/access';
import { ActionButton } from './ActionButton';

export function BackupNowButton({ vm, variant = 'secondary' }: { vm: VmRef; variant?: 'primary' | 'secondary' | 'link' }) {
  const { t } = useTexts();
  const backup = useBackupNow(vm);
  return (
    <ActionButton id={`backup-now-${vm.id}`} variant={variant} isInline={variant === 'link'} action={backup} aria-label={t('backupNowOf', { vm: vm.name })}>
      {t('backupNowButton')}
    </ActionButton>
  );
}
