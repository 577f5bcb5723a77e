/**
 * Names WebAdmin and the engine know the plugin by. They must match static/olvm-backup.json
 * (`name`) and webpack's publicPath: WebAdmin serves `/ovirt-engine/webadmin/plugin/<name>/<file>`
 * from the descriptor's resourcePath (reference/ovirt-ui-plugin.md §1.5).
 */
export const PLUGIN_NAME = 'olvm-backup';

/** Content URLs are relative to /ovirt-engine/webadmin/ (§2.3). */
export const RESOURCE_BASE = `plugin/${PLUGIN_NAME}/`;

export const PAGES = {
  place: `${RESOURCE_BASE}place.html`,
  vmTab: `${RESOURCE_BASE}vm-tab.html`,
  restore: `${RESOURCE_BASE}restore.html`,
} as const;

/** History tokens of the plugin's places and the restore dialog. */
export const TOKENS = {
  place: 'olvm-backup',
  vmTab: 'olvm-backup-vm',
  restoreDialog: 'olvm-backup-restore',
} as const;

/** How the Restore dialog is opened beyond its VM and point. */
export interface RestoreDialogOptions {
  /** The engine no longer has the VM (the Deleted VMs view): the dialog starts on bringing it
   *  back under its original ids (the VM list it loads, for attach targets, does not name it). */
  deleted?: boolean;
}

/** The Restore dialog's page for a VM, opened on one of its points (else on the newest). */
export function restoreDialogUrl(vm: { id: string; name: string }, pointId?: string, opts: RestoreDialogOptions = {}): string {
  const q = new URLSearchParams({ vmId: vm.id, vmName: vm.name });
  if (pointId) q.set('pointId', pointId);
  if (opts.deleted) q.set('deleted', '1');
  return `${PAGES.restore}?${q.toString()}`;
}

/** The Restore dialog holds a form, the disks table and the progress: wide enough for the table. */
export const RESTORE_DIALOG_SIZE = { width: '1100px', height: '800px' } as const;

/** WebAdmin renders these as DOM ids `<container>_<id>` (§2.4, 4.4+). */
export const BUTTON_IDS = {
  backupNow: 'OlvmBackupNow',
  restore: 'OlvmRestore',
} as const;

/** The WebAdmin entity type our buttons and tab attach to (§2.8). */
export const VM_ENTITY = 'VirtualMachine';

/** Where WebAdmin lands when nothing else is known (its VM list exists in every install). */
export const FALLBACK_PLACE = 'vms';

export const API_PREFIX = '/api/v1';
