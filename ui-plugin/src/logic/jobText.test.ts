// Unit tests of the texts of finished-job toasts.
import { messagesFor, translator } from '../intl/messages';
import { finishedJobToast, pointTypeKey, restoredDiskNames } from './jobText';
import { vmSearch } from './search';
import { makeJob } from './testJobs';

const t = translator(messagesFor('en-US'));

describe('toasts for finished jobs', () => {
  const restored = { vmId: 'v9', vmName: 'web01-copy', disks: [{ device: 'ua-1', diskId: 'd1', name: 'web01-copy_Disk1', verified: true }, { device: 'ua-2', diskId: 'd2', name: 'web01-copy_Disk2', verified: true }] };
  const result = { pointId: 'p1', bytesRead: 5, bytesStored: 0, durationMs: 1000, disks: [], warnings: [], restored };

  it('names the VM and the disks a restore created', () => {
    const job = makeJob({ id: 'j1', kind: 'restore', state: 'succeeded', restore: { pointId: 'p1', mode: 'vm', target: 'web01-copy' }, result });
    expect(restoredDiskNames(job)).toBe('web01-copy_Disk1, web01-copy_Disk2');
    expect(finishedJobToast(job, t, 'en-US')).toEqual({ severity: 'success', text: 'Restore of web01 finished: VM web01-copy created (down) with disks web01-copy_Disk1, web01-copy_Disk2.' });
  });

  it('names the disks of a disk-only restore, and the VM they were attached to', () => {
    const one = { ...result, restored: { vmId: null, vmName: null, disks: [restored.disks[0]!] } };
    const floating = makeJob({ id: 'j2', kind: 'restore', state: 'succeeded', restore: { pointId: 'p1', mode: 'disks', target: null }, result: one });
    expect(finishedJobToast(floating, t, 'en-US').text).toBe('Restore of web01 finished: disks web01-copy_Disk1 created.');
    const attached = makeJob({ id: 'j3', kind: 'restore', state: 'succeeded', restore: { pointId: 'p1', mode: 'disks', target: 'x' }, result: { ...one, restored: { ...one.restored, vmId: 'v2', vmName: 'db01' } } });
    expect(finishedJobToast(attached, t, 'en-US').text).toBe('Restore of web01 finished: disks web01-copy_Disk1 created and attached to db01.');
  });

  it('says why a restore did not finish, and keeps the backup texts', () => {
    const failed = makeJob({ id: 'j4', kind: 'restore', state: 'failed', error: { code: 'RESTORE_FAILED', message: 'upload stopped' } });
    expect(finishedJobToast(failed, t, 'en-US')).toEqual({ severity: 'danger', text: 'Restore of web01 failed: upload stopped' });
    expect(finishedJobToast({ ...failed, state: 'cancelled' }, t, 'en-US').severity).toBe('warning');
    expect(finishedJobToast({ ...failed, state: 'interrupted' }, t, 'en-US').text).toContain('interrupted');
    const backup = makeJob({ id: 'j5', state: 'failed', error: { code: 'X', message: 'no host' } });
    expect(finishedJobToast(backup, t, 'en-US').text).toBe('Backup of web01 failed: no host');
    const ok = makeJob({ id: 'j6', state: 'succeeded', finishedAt: '2024-01-01T00:00:00Z', result: { ...result, bytesStored: 2048, restored: undefined } });
    expect(finishedJobToast(ok, t, 'en-US')).toMatchObject({ severity: 'success', text: expect.stringMatching(/^Backup of web01 finished: restore point of .* \(2 KiB stored\)\.$/) });
  });
});

describe('toasts for finished verify jobs', () => {
  const verified = (damaged: string[]) => ({ pointId: 'p1', bytesRead: 5, bytesStored: 0, durationMs: 1, disks: [], warnings: [], verified: { points: 3, damaged, quarantined: damaged.length, cleared: [] } });
  it('says whether the points were whole, never that a backup finished', () => {
    expect(finishedJobToast(makeJob({ id: 'v1', kind: 'verify', state: 'succeeded', result: verified([]) }), t, 'en-US')).toEqual({ severity: 'success', text: 'Verify of web01 finished: 3 restore point(s) checked, every chunk whole.' });
    expect(finishedJobToast(makeJob({ id: 'v2', kind: 'verify', state: 'succeeded', result: verified(['p1']) }), t, 'en-US').severity).toBe('danger');
    expect(finishedJobToast(makeJob({ id: 'v3', kind: 'verify', state: 'failed', error: { code: 'X', message: 'boom' } }), t, 'en-US').text).toBe('Verify of web01 failed: boom');
  });
});

describe('WebAdmin VM search', () => {
  it('searches a VM by name, quoting what is not a plain name', () => {
    expect(vmSearch('web01-copy')).toBe('Vms: name = web01-copy');
    expect(vmSearch('odd "name"')).toBe('Vms: name = "odd \\"name\\""');
  });
});

describe('point types', () => {
  it('is full or incremental when every disk is, mixed otherwise', () => {
    expect(pointTypeKey({ disks: [{ mode: 'full' }, { mode: 'full' }] })).toBe('typeFull');
    expect(pointTypeKey({ disks: [{ mode: 'incremental' }] })).toBe('typeIncremental');
    expect(pointTypeKey({ disks: [{ mode: 'incremental' }, { mode: 'full' }] })).toBe('typeMixed');
  });
});
