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
