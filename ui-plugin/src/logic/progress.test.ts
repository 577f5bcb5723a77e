// Unit tests of job progress: percent across phases, ETA, duration.
import type { Job, JobProgress } from '../../../backend/src/api/contract';
import { isActive, jobDurationSeconds, jobEtaSeconds, jobPercent } from './progress';
import { reconnectDelayMs } from './backoff';

const progress = (o: Partial<JobProgress> = {}): JobProgress => ({
  phase: 'copying',
  disk: 'disk1',
  bytesDone: 0,
  bytesTotal: 0,
  disksDone: 0,
  disksTotal: 1,
  rateBytesPerSec: 0,
  etaSeconds: null,
  updatedAt: '2024-01-01T00:00:00Z',
  ...o,
});

describe('job progress', () => {
  it('is 0 before anything is known and 100 only when done', () => {
    expect(jobPercent({ state: 'queued', progress: null })).toBe(0);
    expect(jobPercent({ state: 'running', progress: progress({ bytesTotal: 0 }) })).toBe(0);
    expect(jobPercent({ state: 'running', progress: progress({ bytesDone: 50, bytesTotal: 200 }) })).toBe(25);
    // every byte copied, the point not yet written: not 100 yet
    expect(jobPercent({ state: 'running', progress: progress({ bytesDone: 200, bytesTotal: 200, phase: 'committing' }) })).toBe(99);
    expect(jobPercent({ state: 'running', progress: progress({ phase: 'done', bytesDone: 200, bytesTotal: 200 }) })).toBe(100);
    expect(jobPercent({ state: 'succeeded', progress: null })).toBe(100);
    expect(jobPercent({ state: 'running', progress: progress({ bytesDone: 300, bytesTotal: 200 }) })).toBe(99);
  });

  it('never goes back through the phases of a restore, whose bytes start again for verification', () => {
    const steps: Array<Partial<JobProgress>> = [
      { phase: 'planning', bytesTotal: 0 },
      { phase: 'creating-disks', bytesDone: 0, bytesTotal: 200 },
      { phase: 'uploading', bytesDone: 0, bytesTotal: 200 },
      { phase: 'uploading', bytesDone: 100, bytesTotal: 200 },
      { phase: 'finalizing', bytesDone: 100, bytesTotal: 200 }, // the first disk
      { phase: 'uploading', bytesDone: 150, bytesTotal: 200 },
      { phase: 'finalizing', bytesDone: 200, bytesTotal: 200 },
      { phase: 'verifying', bytesDone: 0, bytesTotal: 200 },
      { phase: 'verifying', bytesDone: 200, bytesTotal: 200 },
      { phase: 'creating-vm', bytesDone: 200, bytesTotal: 200 },
      { phase: 'done', bytesDone: 200, bytesTotal: 200 },
    ];
    const seen = steps.map((o) => jobPercent({ kind: 'restore', state: 'running', progress: progress(o) }));
    expect(seen).toEqual([0, 1, 3, 37, 37, 54, 72, 72, 96, 99, 100]);
    // the same bytes of a backup are a plain fraction
    expect(jobPercent({ kind: 'backup', state: 'running', progress: progress({ phase: 'copying', bytesDone: 100, bytesTotal: 200 }) })).toBe(50);
  });

  it("takes the service's ETA, else derives it from the rate", () => {
    expect(jobEtaSeconds(null)).toBeNull();
    expect(jobEtaSeconds(progress({ etaSeconds: 12 }))).toBe(12);
    expect(jobEtaSeconds(progress({ bytesDone: 100, bytesTotal: 300, rateBytesPerSec: 50 }))).toBe(4);
    expect(jobEtaSeconds(progress({ bytesDone: 100, bytesTotal: 300 }))).toBeNull();
  });

  it('measures durations and activity', () => {
    const job = { startedAt: '2024-01-01T00:00:00Z', finishedAt: '2024-01-01T00:01:30Z' } as Pick<Job, 'startedAt' | 'finishedAt'>;
    expect(jobDurationSeconds(job)).toBe(90);
    expect(jobDurationSeconds({ startedAt: null, finishedAt: null })).toBeNull();
    expect(jobDurationSeconds({ startedAt: '2024-01-01T00:00:00Z', finishedAt: null }, Date.parse('2024-01-01T00:00:10Z'))).toBe(10);
    expect(isActive({ state: 'queued' })).toBe(true);
    expect(isActive({ state: 'failed' })).toBe(false);
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(reconnectDelayMs(0, () => 0)).toBe(500);
    expect(reconnectDelayMs(1, () => 0)).toBe(1000);
    expect(reconnectDelayMs(3, () => 1)).toBe(3200);
    expect(reconnectDelayMs(50, () => 0)).toBe(15000);
  });
});
