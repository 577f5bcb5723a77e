/**
 * Every text the plugin shows, in one place, ready for translation: add a locale object with
 * the same keys. `{name}` placeholders are filled by `t()`. WebAdmin's locale comes from
 * `currentLocale()` (e.g. `en-US`, `fr-FR`); unknown locales fall back to English text while
 * numbers and dates still follow the user's locale.
 */
const enUS = {
  pluginPlaceLabel: 'Backup',
  vmTabLabel: 'Backups',
  backupNowButton: 'Backup now',
  restoreButton: 'Restore…',
  restoreDialogTitle: 'Restore {vm}',
  close: 'Close',

  toastBackupStarted: 'Backup of {vm} started.',
  toastBackupJoined: 'A backup of {vm} is already running; following it.',
  toastBackupStartFailed: 'Backup of {vm} could not be started: {reason}',
  toastJobSucceeded: 'Backup of {vm} finished: restore point of {time} ({stored} stored).',
  toastJobFailed: 'Backup of {vm} failed: {reason}',
  toastJobCancelled: 'Backup of {vm} was cancelled.',
  toastJobInterrupted: 'Backup of {vm} was interrupted (the backup service stopped).',

  errServiceUnreachable: 'The backup service at {url} cannot be reached. Check that it is running and that this portal may reach it.',
  errUnauthorized: 'The backup service refused your session ({message}). Log out of the portal and in again.',
  errForbidden: 'You are not allowed to do this: {message}',
  errNotFound: 'Not found: {message}',
  errConflict: 'Refused: {message}',
  errServer: 'The backup service failed: {message}',
  errConfig: 'The plugin is not configured: {message}. Set serviceUrl in /etc/ovirt-engine/ui-plugins/olvm-backup-config.json.',
  errNotInWebAdmin: 'This page only works inside the oVirt/OLVM administration portal.',
  retry: 'Retry',
  reconnecting: 'Live updates interrupted: reconnecting to the backup service…',
  liveUnauthorized: 'Live updates refused: your session is no longer accepted by the backup service.',
  loading: 'Loading…',

  tabDashboard: 'Dashboard',
  tabPoints: 'Restore points',
  tabJobs: 'Jobs',
  tabVms: 'Virtual machines',

  runningJobsTitle: 'Running now',
  runningJobsEmpty: 'No backup is running.',
  last24hTitle: 'Last 24 hours',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  storedLast24h: '{bytes} stored',
  repositoryTitle: 'Repository',
  repoUsed: 'Used',
  repoFree: 'Free',
  repoLogical: 'Logical size of all points',
  repoPoints: 'Restore points',
  repoVms: 'Virtual machines',
  repoDedup: 'Deduplication',
  repoCompression: 'Compression',
  repoSavings: 'Total reduction',
  nextFullTitle: 'Next backup will be full',
  nextFullEmpty: 'Every protected VM will get an incremental backup.',
  neverBackedUp: 'never backed up',

  colVm: 'Virtual machine',
  colTime: 'Time',
  colType: 'Type',
  colDisks: 'Disks',
  colRead: 'Read',
  colStored: 'Stored',
  colConsistency: 'Consistency',
  colDuration: 'Duration',
  colLocked: 'Locked until',
  colState: 'State',
  colProgress: 'Progress',
  colRequestedBy: 'Requested by',
  colStarted: 'Started',
  colFinished: 'Finished',
  colResult: 'Result',
  colDisk: 'Disk',
  colChain: 'Chain',
  colReason: 'Reason',
  colStatus: 'Status',
  colLastBackup: 'Last backup',
  colPoints: 'Points',
  colActions: 'Actions',

  filterPlaceholder: 'Filter by name',
  filterLabel: 'Filter rows',
  stateFilterLabel: 'Job state',
  allStates: 'All states',
  loadOlder: 'Load older jobs',
  noPoints: 'No restore points yet.',
  noJobs: 'No jobs yet.',
  noVms: 'No virtual machines visible to you.',
  noMatch: 'Nothing matches the filter.',

  typeFull: 'Full',
  typeIncremental: 'Incremental',
  typeMixed: 'Full + incremental',
  consistencyCrash: 'Crash-consistent',
  consistencyFilesystem: 'Filesystem-consistent',

  stateQueued: 'Queued',
  stateRunning: 'Running',
  stateSucceeded: 'Succeeded',
  stateFailed: 'Failed',
  stateCancelled: 'Cancelled',
  stateInterrupted: 'Interrupted',

  phaseQueued: 'Waiting',
  'phaseStarting-vm': 'Starting VM paused',
  phasePreparing: 'Preparing',
  phaseFrozen: 'Filesystems frozen',
  phaseCopying: 'Copying {disk}',
  phaseCommitting: 'Writing restore point',
  'phaseStopping-vm': 'Stopping VM',
  phaseDone: 'Done',
  progressDetail: '{done} of {total} · disk {disksDone}/{disksTotal} · {rate}/s · {eta} left',
  progressDetailNoEta: '{done} of {total} · disk {disksDone}/{disksTotal}',
  progressResult: '{read} read, {stored} stored, in {duration}',
  cancelJob: 'Cancel',
  cancelJobLabel: 'Cancel the backup of {vm}',
  progressLabel: 'Backup progress of {vm}',

  chainOk: 'Incremental next',
  chainFull: 'Full next',
  chainExcluded: 'Excluded',
  'reasonFirst-backup': 'never backed up',
  'reasonBitmap-missing': 'change tracking lost (VM restarted or QEMU crashed)',
  'reasonBitmap-inconsistent': 'change tracking inconsistent',
  'reasonBitmap-not-recording': 'change tracking not recording',
  'reasonBitmap-busy': 'change tracking busy',
  'reasonBitmap-mismatch': 'change tracking does not match the last point',
  'reasonDisk-resized': 'disk resized',
  'reasonNode-changed': 'disk image changed (snapshot)',
  'reasonParent-missing': 'previous point missing',
  reasonForced: 'full backup requested',
  reasonExcluded: 'excluded (backup=0)',
  reasonIncremental: 'incremental',

  vmTabNoVm: 'Select a virtual machine.',
  vmTabPointsTitle: 'Restore points',
  vmTabChainTitle: 'Chain health per disk',
  vmTabJobsTitle: 'Jobs',
  vmTabLastJob: 'Last backup job',
  backupNowOf: 'Back up {vm} now',
  vmNotVisible: 'This VM is not visible to you in the backup service.',

  restoreChoosePoint: 'Restore point',
  restorePointDisks: 'Disks in this point',
  restoreOvfTitle: 'VM definition (OVF)',
  restoreOvfMissing: 'This point holds no VM definition.',
  restoreOvfName: 'Name',
  restoreOvfMemory: 'Memory',
  restoreOvfCpus: 'CPUs',
  restoreOvfOs: 'Operating system',
  restoreOvfNics: 'Network interfaces',
  restoreExcluded: 'Left out of this point: {disks}',
  restoreAction: 'Restore',
  restoreNotYet: 'Restoring from the portal arrives with the restore API of the backup service; until then restore with the olvm-backup command line on the backup server (olvm-backup restore --point {point}).',
  restoreNoPoints: 'This VM has no restore points.',
  virtualSize: 'Size',
  format: 'Format',
} as const;

export type MessageKey = keyof typeof enUS;
export type Messages = Record<MessageKey, string>;

const catalogs: Record<string, Messages> = { 'en-US': enUS };

/** The catalog for a WebAdmin locale: exact match, then language, then English. */
export function messagesFor(locale: string | undefined): Messages {
  const loc = (locale ?? 'en-US').replace('_', '-');
  const exact = catalogs[loc];
  if (exact) return exact;
  const lang = loc.split('-')[0];
  const byLang = Object.keys(catalogs).find((k) => k.split('-')[0] === lang);
  return (byLang && catalogs[byLang]) || enUS;
}

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

export function translator(messages: Messages): Translate {
  return (key, params) => {
    const text = messages[key] ?? key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
  };
}

/** `phaseCopying`, `reasonFirst-backup`, `stateRunning`: keys built from contract values. */
export function keyOf(prefix: 'phase' | 'reason' | 'state', value: string): MessageKey {
  return `${prefix}${value.charAt(0).toUpperCase()}${value.slice(1)}` as MessageKey;
}

export const supportedLocales = Object.keys(catalogs);
