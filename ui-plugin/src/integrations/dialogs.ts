// Opening the Restore… dialog through WebAdmin's showDialog.
import { RESTORE_DIALOG_SIZE, restoreDialogUrl, TOKENS, type RestoreDialogOptions } from '../constants';
import type { Translate } from '../intl/messages';
import { guard } from './pluginApi';
import type { OvirtPluginApi } from './pluginApiTypes';

/**
 * The Restore… dialog (WebAdmin renders it, our page is its iframe, reference §2.5): from the
 * VM list's action (newest point), a point's row in a Backups tab or the Backup place, or a VM
 * of the Deleted VMs view (`deleted`: the engine no longer lists it, so everything the page
 * needs — id, name, point — travels in its URL). Its only footer button closes it; Restore
 * itself is inside the page.
 */
export function openRestoreDialog(api: OvirtPluginApi, t: Translate, vm: { id: string; name: string }, pointId?: string, opts: RestoreDialogOptions = {}): void {
  api.showDialog(t('restoreDialogTitle', { vm: vm.name }), TOKENS.restoreDialog, restoreDialogUrl(vm, pointId, opts), RESTORE_DIALOG_SIZE.width, RESTORE_DIALOG_SIZE.height, {
    buttons: [{ label: t('close'), onClick: guard('close dialog', () => api.closeDialog(TOKENS.restoreDialog), undefined) }],
  });
}
