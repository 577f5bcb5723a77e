// Unit tests of the dashboard's sums: last 24 hours, next full backups, repository fill.
import { repositoryFill, summarizeRecent, vmsNextFull } from './dashboard';
import { makeJob, makeVm } from './testJobs';

describe('dashboard', () => {
  const now = Date.parse('2024-01-02T12:00:00Z');
  it('counts the last 24 hours', () => {
    const jobs = [
      makeJob({ id: '1', state: 'succeeded', finishedAt: '2024-01-02T11:00:00Z', result: { pointId: 'p', bytesRead: 10, bytesStored: 4, durationMs: 1, disks: [], warnings: [] } }),
      makeJob({ id: '2', state: 'failed', finishedAt: '2024-01-02T01:00:00Z' }),
      makeJob({ id: '3', state: 'interrupted', finishedAt: '2024-01-01T13:00:00Z' }),
      makeJob({ id: '4', state: 'succeeded', finishedAt: '2024-01-01T11:00:00Z' }),
      makeJob({ id: '5', state: 'cancelled', finishedAt: '2024-01-02T00:00:00Z' }),
      makeJob({ id: '6', state: 'running' }),
      makeJob({ id: '7', kind: 'restore', state: 'succeeded', finishedAt: '2024-01-02T11:30:00Z' }),
    ];
    expect(summarizeRecent(jobs, now)).toEqual({ succeeded: 1, failed: 2, cancelled: 1, bytesStored: 4 });
  });

  it('lists the VMs whose next backup is full, with the disks and why', () => {
    const vms = [
      makeVm({ id: 'b', name: 'web01', chain: [{ diskId: 'd1', alias: 'web01_disk1', state: 'ok', reason: null, excluded: false }] }),
      makeVm({
        id: 'a',
        name: 'db01',
        chain: [
          { diskId: 'd2', alias: 'db01_disk1', state: 'will-be-full', reason: 'bitmap-missing', excluded: false },
          { diskId: 'd3', alias: 'db01_scratch', state: 'will-be-full', reason: 'excluded', excluded: true },
        ],
      }),
      makeVm({ id: 'c', name: 'app01', chain: [{ diskId: 'd4', alias: 'app01_disk1', state: 'will-be-full', reason: 'first-backup', excluded: false }] }),
    ];
    const out = vmsNextFull(vms);
    expect(out.map((n) => n.vm.name)).toEqual(['app01', 'db01']);
    expect(out[1]?.disks).toEqual([{ alias: 'db01_disk1', reason: 'bitmap-missing' }]);
  });

  it('computes the repository fill', () => {
    expect(repositoryFill(25, 75)).toBe(0.25);
    expect(repositoryFill(25, null)).toBeNull();
    expect(repositoryFill(0, 0)).toBe(0);
  });
});
