/** Backup now for one VM from inside a page: the button opens a dialog choosing the method, the
 *  consistency and a full copy (useBackupNow starts it — or says which permit is missing —; the
 *  WebAdmin toast says what happened). */
import { Button, Checkbox, Form, Modal, ModalBody, ModalFooter, ModalHeader } from '@patternfly/react-core';
import { useState } from 'react';
import type { ConsistencyMode } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { useBackupNow } from '../../hooks/useJobActions';
import { backupDenial, deniedText, type VmRef } from '../../logic/access';
import { backupNowBody, type MethodChoice } from '../../logic/backupChoices';
import { ActionButton } from './ActionButton';
import { ConsistencySelect, MethodSelect } from './BackupChoiceFields';

export function BackupNowButton({ vm, variant = 'secondary' }: { vm: VmRef; variant?: 'primary' | 'secondary' | 'link' }) {
  const { t } = useTexts();
  const [open, setOpen] = useState(false);
  const denied = deniedText(t, backupDenial(vm));
  const opener = { run: () => setOpen(true), busy: false, ...(denied ? { disabledReason: denied } : {}) };
  return (
    <>
      <ActionButton id={`backup-now-${vm.id}`} variant={variant} isInline={variant === 'link'} action={opener} aria-label={t('backupNowOf', { vm: vm.name })}>
        {t('backupNowButton')}
      </ActionButton>
      {open ? <BackupNowDialog vm={vm} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

/** The choices of one Backup now; its Back up button starts it and closes the dialog. */
function BackupNowDialog({ vm, onClose }: { vm: VmRef; onClose: () => void }) {
  const { t } = useTexts();
  const [method, setMethod] = useState<MethodChoice>('');
  const [consistency, setConsistency] = useState<ConsistencyMode>('auto');
  const [full, setFull] = useState(false);
  const start = useBackupNow(vm, backupNowBody({ full, method, consistency }), onClose);
  return (
    <Modal id="backup-now-dialog" isOpen variant="small" onClose={onClose} aria-labelledby="backup-now-title">
      <ModalHeader title={t('backupNowTitle', { vm: vm.name })} labelId="backup-now-title" />
      <ModalBody>
        <Form id="backup-now-form" onSubmit={(e) => e.preventDefault()}>
          <MethodSelect id="backup-now-method" value={method} onChange={setMethod} />
          <ConsistencySelect id="backup-now-consistency" value={consistency} onChange={setConsistency} />
          <Checkbox id="backup-now-full" label={t('backupNowFull')} isChecked={full} onChange={(_e, on) => setFull(on)} />
        </Form>
      </ModalBody>
      <ModalFooter>
        <ActionButton id="backup-now-start" variant="primary" action={start}>
          {t('backupNowStart')}
        </ActionButton>
        <Button id="backup-now-cancel" variant="link" onClick={onClose}>
          {t('cancel')}
        </Button>
      </ModalFooter>
    </Modal>
  );
}
