// Unit tests of the live jobs state (snapshot, job and progress events, stale reports).
import type { JobProgress } from '../../../backend/src/api/contract';
import { finishedJobs, initialJobsState, jobsReducer, jobsSorted } from './jobsState';
import { makeJob } from './testJobs';

const prog = (bytesDone: number, at: string): JobProgress => ({
  phase: 'copying',
  disk: 'd',
  bytesDone,
  bytesTotal: 100,
  disksDone: 0,
  disksTotal: 1,
  rateBytesPerSec: 10,
  etaSeconds: null,
  updatedAt: at,
});

describe('jobs state', () => {
  it('applies snapshot, job and progress events', () => {
    let s = jobsReducer(initialJobsState, { type: 'message', message: { type: 'snapshot', jobs: [makeJob({ id: 'a', state: 'queued' })] } });
    s = jobsReducer(s, { type: 'message', message: { type: 'job', job: makeJob({ id: 'a', state: 'running' }) } });
    s = jobsReducer(s, { type: 'message', message: { type: 'progress', jobId: 'a', vmId: 'vm-1', progress: prog(40, '2024-01-01T00:00:02Z') } });
    expect(s.byId.a?.state).toBe('running');
    expect(s.byId.a?.progress?.bytesDone).toBe(40);
  });

  it('ignores stale reports: late running after succeeded, older progress', () => {
    let s = jobsReducer(initialJobsState, { type: 'message', message: { type: 'job', job: makeJob({ id: 'a', state: 'running', progress: prog(50, '2024-01-01T00:00:05Z') }) } });
    s = jobsReducer(s, { type: 'message', message: { type: 'progress', jobId: 'a', vmId: 'vm-1', progress: prog(30, '2024-01-01T00:00:03Z') } });
    expect(s.byId.a?.progress?.bytesDone).toBe(50);
    s = jobsReducer(s, { type: 'message', message: { type: 'job', job: makeJob({ id: 'a', state: 'succeeded' }) } });
    s = jobsReducer(s, { type: 'message', message: { type: 'job', job: makeJob({ id: 'a', state: 'running' }) } });
    s = jobsReducer(s, { type: 'message', message: { type: 'progress', jobId: 'a', vmId: 'vm-1', progress: prog(60, '2024-01-01T00:00:09Z') } });
    expect(s.byId.a?.state).toBe('succeeded');
    // the REST list loaded after the event does not undo it either
    s = jobsReducer(s, { type: 'loaded', jobs: [makeJob({ id: 'a', state: 'queued' })] });
    expect(s.byId.a?.state).toBe('succeeded');
  });

  it('drops progress of unknown jobs and counts points', () => {
    let s = jobsReducer(initialJobsState, { type: 'message', message: { type: 'progress', jobId: 'x', vmId: 'v', progress: prog(1, '2024-01-01T00:00:00Z') } });
    expect(s).toBe(initialJobsState);
    s = jobsReducer(s, { type: 'message', message: { type: 'pong' } });
    expect(s).toBe(initialJobsState);
    const point = { id: 'p1' } as never;
    s = jobsReducer(s, { type: 'message', message: { type: 'point', point } });
    expect(s.pointsVersion).toBe(1);
    expect(s.lastPoint).toBe(point);
  });

  it('lists jobs newest first, per VM, and reports the ones that just finished', () => {
    const before = jobsReducer(initialJobsState, {
      type: 'loaded',
      jobs: [makeJob({ id: 'old', createdAt: '2024-01-01T00:00:00Z', state: 'running' }), makeJob({ id: 'new', vmId: 'vm-2', createdAt: '2024-01-02T00:00:00Z', state: 'running' })],
    });
    expect(jobsSorted(before).map((j) => j.id)).toEqual(['new', 'old']);
    expect(jobsSorted(before, 'vm-2').map((j) => j.id)).toEqual(['new']);
    const after = jobsReducer(before, { type: 'message', message: { type: 'job', job: makeJob({ id: 'old', state: 'failed' }) } });
    expect(finishedJobs(before, after).map((j) => j.id)).toEqual(['old']);
    expect(finishedJobs(after, after)).toEqual([]);
  });
});
