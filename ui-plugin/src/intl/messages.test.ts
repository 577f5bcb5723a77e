import { keyOf, messagesFor, translator, type MessageKey } from './messages';

describe('messages', () => {
  const en = messagesFor('en-US');

  it('has a text for every contract value the UI names', () => {
    const values: Array<['phase' | 'reason' | 'state' | 'runState' | 'trigger' | 'auditKind', string[]]> = [
      ['runState', ['resolving', 'running', 'succeeded', 'partial', 'failed', 'skipped']],
      ['trigger', ['schedule', 'catch-up', 'manual']],
      ['auditKind', ['delete', 'delete-failed', 'prune', 'lock-extend', 'unlock', 'gc', 'damage-mark', 'damage-clear', 'chunk-quarantine', 'auth-failure', 'restore', 'policy-create', 'policy-update', 'policy-delete', 'policy-run']],
      ['state', ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']],
      ['phase', ['queued', 'starting-vm', 'preparing', 'frozen', 'copying', 'committing', 'stopping-vm', 'planning', 'creating-disks', 'uploading', 'finalizing', 'creating-vm', 'attaching', 'verifying', 'done']],
      [
        'reason',
        ['first-backup', 'bitmap-missing', 'bitmap-inconsistent', 'bitmap-not-recording', 'bitmap-busy', 'bitmap-mismatch', 'disk-resized', 'node-changed', 'parent-missing', 'forced', 'excluded', 'incremental'],
      ],
    ];
    for (const [prefix, list] of values) for (const v of list) expect(en[keyOf(prefix, v)]).toEqual(expect.any(String));
  });

  it('fills placeholders and keeps unknown ones visible', () => {
    const t = translator(en);
    expect(t('toastBackupStarted', { vm: 'web01' })).toBe('Backup of web01 started.');
    expect(t('restoreDialogTitle')).toBe('Restore {vm}');
    expect(t('phaseCopying', { other: 1 })).toBe('Copying {disk}');
  });

  it('falls back to English for locales without a catalog', () => {
    expect(messagesFor('fr_FR')).toBe(en);
    expect(messagesFor(undefined)).toBe(en);
    expect(messagesFor('en-GB')).toBe(en);
  });

  it('has no empty texts', () => {
    for (const k of Object.keys(en) as MessageKey[]) expect(en[k].trim()).not.toBe('');
  });
});
