// The catalogs: every contract value named, every key in one area, a translation's placeholders
// those of the English text, placeholders well formed; and t()'s filling and fallback.
import type { AuditKind } from '../../../backend/src/api/contract';
import { AREAS, keyOf, messagesFor, supportedLocales, translator, type MessageKey, type Messages } from './messages';

/** Every audit kind of the contract: the compiler refuses this object when one is missing, so a
 *  kind the service adds fails the build of this test until it has a text. */
const AUDIT_KINDS: Record<AuditKind, true> = {
  delete: true,
  'delete-failed': true,
  prune: true,
  'lock-extend': true,
  unlock: true,
  gc: true,
  'damage-mark': true,
  'damage-clear': true,
  'chunk-quarantine': true,
  upgrade: true,
  'auth-failure': true,
  'access-denied': true,
  restore: true,
  'policy-create': true,
  'policy-update': true,
  'policy-delete': true,
  'policy-run': true,
  'file-restore': true,
};

/** `{name}` placeholders of a text, sorted. */
const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '').sort();

describe('messages', () => {
  const en = messagesFor('en-US');

  it('has a text for every contract value the UI names', () => {
    const values: Array<['phase' | 'reason' | 'state' | 'runState' | 'trigger' | 'auditKind', string[]]> = [
      ['runState', ['resolving', 'running', 'succeeded', 'partial', 'failed', 'skipped']],
      ['trigger', ['schedule', 'catch-up', 'manual']],
      ['auditKind', Object.keys(AUDIT_KINDS)],
      ['state', ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']],
      ['phase', ['queued', 'starting-vm', 'preparing', 'frozen', 'copying', 'committing', 'stopping-vm', 'planning', 'creating-disks', 'uploading', 'finalizing', 'creating-vm', 'attaching', 'verifying', 'booting', 'done']],
      [
        'reason',
        ['first-backup', 'bitmap-missing', 'bitmap-inconsistent', 'bitmap-not-recording', 'bitmap-busy', 'bitmap-mismatch', 'disk-resized', 'node-changed', 'parent-missing', 'parent-damaged', 'forced', 'method-changed', 'disk-not-incremental', 'checkpoint-missing', 'checkpoint-invalid', 'engine-full', 'excluded', 'incremental'],
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

  it('keeps every key in exactly one area (a key in two would silently take the later text)', () => {
    const perArea = Object.values(AREAS).flatMap((area) => Object.keys(area));
    expect(perArea.filter((k, i) => perArea.indexOf(k) !== i)).toEqual([]);
    expect([...perArea].sort()).toEqual(Object.keys(en).sort());
  });

  // every key in every locale is the compiler's (a catalog is typed Messages); the placeholders
  // are not: a translation that drops `{vm}` would show the sentence without the VM
  it('finds a translation whose placeholders differ from the English text, and no locale has one', () => {
    const keys = Object.keys(en) as MessageKey[];
    const drift = (catalog: Messages): MessageKey[] => keys.filter((k) => placeholders(catalog[k]).join() !== placeholders(en[k]).join());
    expect(drift({ ...en, toastBackupStarted: 'Sauvegarde lancée.', restoreDialogTitle: 'Restaurer {vm} ({point})' }).sort()).toEqual(['restoreDialogTitle', 'toastBackupStarted']);
    for (const locale of supportedLocales) expect({ locale, drift: drift(messagesFor(locale)) }).toEqual({ locale, drift: [] });
  });

  it('writes placeholders as {name} only (a stray brace would show on screen)', () => {
    const stray = Object.entries(en).filter(([, text]) => /[{}]/.test(text.replace(/\{\w+\}/g, ''))).map(([k]) => k);
    expect(stray).toEqual([]);
  });
});
