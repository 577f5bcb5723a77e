// The VM list's Backup now and Restore… buttons in WebAdmin.
import { BUTTON_IDS, VM_ENTITY } from '../constants';
import type { Translate } from '../intl/messages';
import { backupAllDenial, deniedText, type VmRef } from '../logic/access';
import { errorReason } from '../logic/errorText';
import { canBackup, canRestore, toSelectedVms, type SelectedVm } from '../logic/selection';
import type { BackupClient } from '../services/backupClient';
import type { JobNotifier } from './notifications';
import { openRestoreDialog } from './dialogs';
import { guard, logError } from './pluginApi';
import type { OvirtPluginApi } from './pluginApiTypes';
import { showButtonReason, type VmAccessWatch } from './vmAccess';

/**
 * VM list actions. WebAdmin passes the selection as an array (reference §2.4); isEnabled must
 * return a real boolean; exceptions in these callbacks are swallowed by WebAdmin (the click just
 * does nothing), so guard() logs them instead. Backup now is disabled when a selected VM lacks
 * `backup_disk` (the access flags the host page holds), the reason in the button's title.
 */
export function addButtons(api: OvirtPluginApi, t: Translate, client: BackupClient | null, notifier: JobNotifier | null, configProblem: string | null, access: VmAccessWatch | null): void {
  const backupReason = (selected: unknown): string | undefined => {
    const refs: VmRef[] = toSelectedVms(selected).map((vm) => access?.vm(vm.id) ?? vm);
    return deniedText(t, backupAllDenial(refs));
  };
  api.addMenuPlaceActionButton(VM_ENTITY, t('backupNowButton'), {
    id: BUTTON_IDS.backupNow,
    index: 0,
    isEnabled: guard(
      'Backup now isEnabled',
      (selected: unknown) => {
        const reason = canBackup(selected) ? backupReason(selected) : undefined;
        showButtonReason(BUTTON_IDS.backupNow, reason);
        return canBackup(selected) && !reason;
      },
      false,
    ),
    onClick: guard(
      'Backup now',
      (selected: unknown) => {
        if (!client) {
          api.showToast('danger', t('errConfig', { message: configProblem ?? '' }));
          return;
        }
        // WebAdmin may have drawn the button before the access flags came: say why, start nothing
        const reason = backupReason(selected);
        if (reason) {
          api.showToast('warning', reason);
          return;
        }
        for (const vm of toSelectedVms(selected)) void startBackup(api, t, client, notifier, vm);
      },
      undefined,
    ),
  });
  api.addMenuPlaceActionButton(VM_ENTITY, t('restoreButton'), {
    id: BUTTON_IDS.restore,
    index: 1,
    isEnabled: guard('Restore isEnabled', (selected: unknown) => canRestore(selected), false),
    onClick: guard(
      'Restore',
      (selected: unknown) => {
        const vm = toSelectedVms(selected)[0];
        if (!vm || !canRestore(selected)) return;
        openRestoreDialog(api, t, vm);
      },
      undefined,
    ),
  });
}

async function startBackup(api: OvirtPluginApi, t: Translate, client: BackupClient, notifier: JobNotifier | null, vm: SelectedVm): Promise<void> {
  try {
    const res = await client.vmBackupStart(vm.id);
    notifier?.track(res.job);
    api.showToast('info', t(res.joined ? 'toastBackupJoined' : 'toastBackupStarted', { vm: vm.name }));
  } catch (err) {
    logError(`backup of ${vm.name} could not be started`, err);
    try {
      api.showToast('danger', t('toastBackupStartFailed', { vm: vm.name, reason: errorReason(err) }));
    } catch (e) {
      logError('showToast failed', e);
    }
  }
}
