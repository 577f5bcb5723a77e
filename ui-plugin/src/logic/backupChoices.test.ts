// Unit tests of Backup now's body and the method labels.
import { messagesFor, translator } from '../intl/messages';
import { backupNowBody, CONSISTENCY_CHOICES, isConsistencyMode, isMethodChoice, METHOD_CHOICES, pointMethodKey } from './backupChoices';

const t = translator(messagesFor('en-US'));

describe('backup choices', () => {
  it("sends only what differs from a plain backup (the service's default method, auto consistency)", () => {
    expect(backupNowBody({ full: false, method: '', consistency: 'auto' })).toEqual({});
    expect(backupNowBody({ full: true, method: 'engine', consistency: 'filesystem' })).toEqual({ full: true, method: 'engine', consistency: 'filesystem' });
    expect(backupNowBody({ full: false, method: 'auto', consistency: 'crash' })).toEqual({ method: 'auto', consistency: 'crash' });
  });

  it('offers the contract values with the texts the issue names', () => {
    expect(METHOD_CHOICES.map((c) => [c.value, t(c.label)])).toEqual([
      ['', "The service's default"],
      ['auto', 'Automatic'],
      ['qmp', 'QEMU monitor on the host'],
      ['engine', 'Engine backup API'],
    ]);
    expect(CONSISTENCY_CHOICES.map((c) => [c.value, t(c.label)])).toEqual([
      ['auto', 'Automatic'],
      ['filesystem', 'Require filesystem-consistent'],
      ['crash', 'Crash-consistent'],
    ]);
    expect([isMethodChoice('engine'), isMethodChoice('vddk'), isConsistencyMode('filesystem'), isConsistencyMode('app')]).toEqual([true, false, true, false]);
  });

  it("names a point's method, qmp when absent (results of older versions)", () => {
    expect([t(pointMethodKey('engine')), t(pointMethodKey('qmp')), t(pointMethodKey(undefined))]).toEqual(['Engine API', 'QEMU monitor', 'QEMU monitor']);
  });

  it('says how to fix a disk the engine cannot back up incrementally', () => {
    expect(t('reasonDisk-not-incremental')).toBe('Enable incremental backup on the disk (Edit disk → Enable Incremental Backup); until then every backup copies it whole');
  });
});
