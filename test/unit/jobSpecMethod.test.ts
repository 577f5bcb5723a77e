// A backup job's method and consistency in its stored spec, and the engine-backup facts its
// runner records for the start-up settlement: rows of older versions, rows of this one, what
// `unsettledJobs` hands the settlement, and what the settlement records when it cannot settle.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import { Catalog } from '../../backend/src/catalog';
import { EngineClient } from '../../backend/src/engine';
import { settleInterruptedJobs } from '../../backend/src/jobs';
import { parseFacts, parseSpec, specMethod, type BackupSpec } from '../../backend/src/jobs/spec';
import { jobsOf } from '../helpers/stores';

const VM = '00000000-0000-4000-8000-000000000001';

function job(id: string): Job {
  return {
    id, kind: 'backup', state: 'queued', vmId: VM, vmName: 'web01', hostId: null, requestedBy: { id: 'u', name: 'admin' }, forceFull: false, restore: null,
    createdAt: new Date().toISOString(), startedAt: null, finishedAt: null, cancelRequested: false, progress: null, result: null, error: null,
  };
}

const spec = (over: Partial<BackupSpec> = {}): BackupSpec => ({ v: 1, kind: 'backup', forceFull: false, consistency: 'auto', lockDays: 0, origin: null, ...over });

describe('backup specs: method and consistency', () => {
  test('a spec written before the engine method (no method) takes the service default; a spec naming one keeps it', () => {
    const old = parseSpec('j1', 'backup', '{"v":1,"kind":"backup","forceFull":false,"consistency":"crash","lockDays":3,"origin":null}') as BackupSpec;
    expect(old.method).toBeUndefined();
    expect(specMethod(old, 'auto')).toBe('auto');
    expect(specMethod(old, 'qmp')).toBe('qmp');
    const now = parseSpec('j2', 'backup', JSON.stringify(spec({ method: 'engine', consistency: 'filesystem' }))) as BackupSpec;
    expect([specMethod(now, 'qmp'), now.consistency]).toEqual(['engine', 'filesystem']);
  });
});

describe('job facts: the engine backup a job asked for', () => {
  test('old rows (no such facts, or keys of older versions) read as nothing to settle', () => {
    expect(parseFacts('{}')).toEqual({});
    expect(parseFacts('{"vmStartedByJob":true,"policyId":"x","consistency":"crash"}')).toEqual({ vmStartedByJob: true });
  });

  test('an engine backup and its end are read with their types checked; a malformed one is dropped', () => {
    expect(parseFacts('{"engineBackup":{"vmId":"v","backupId":"b"},"engineBackupFinished":false}')).toEqual({ engineBackup: { vmId: 'v', backupId: 'b' }, engineBackupFinished: false });
    expect(parseFacts('{"engineBackup":{"vmId":"v","backupId":"b","extra":1},"engineBackupFinished":true}')).toEqual({ engineBackup: { vmId: 'v', backupId: 'b' }, engineBackupFinished: true });
    expect(parseFacts('{"engineBackup":{"vmId":"v"},"engineBackupFinished":"yes"}')).toEqual({});
    expect(parseFacts('{"engineBackup":{"vmId":"v","backupId":""}}')).toEqual({});
    expect(parseFacts('{"engineBackup":["v","b"]}')).toEqual({});
  });
});

describe('unsettledJobs and the settlement', () => {
  let dir: string;
  let catalog: Catalog;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-facts-'));
    catalog = Catalog.open(path.join(dir, 'catalog.sqlite'));
  });

  afterEach(async () => {
    catalog.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('interrupted jobs with an engine backup not finished, or a started VM not stopped, are unsettled; finished ones and others are not', () => {
    const jobs = jobsOf(catalog);
    const facts: Record<string, Parameters<typeof jobs.rememberFacts>[1]> = {
      open: { engineBackup: { vmId: VM, backupId: 'b1' }, engineBackupFinished: false },
      closed: { engineBackup: { vmId: VM, backupId: 'b2' }, engineBackupFinished: true },
      vm: { vmStartedByJob: true },
      vmStopped: { vmStartedByJob: true, vmStoppedAgain: true },
      none: {},
    };
    for (const [id, f] of Object.entries(facts)) {
      jobs.insertJob(job(id), spec({ method: 'engine' }));
      jobs.updateJob(id, { state: 'running' });
      jobs.rememberFacts(id, f);
    }
    // a queued job with an open engine backup is not interrupted: not settled here
    jobs.insertJob(job('queued'), spec());
    jobs.rememberFacts('queued', facts['open']!);
    expect(jobs.unsettledJobs()).toEqual([]);
    jobs.markRunningInterrupted(new Date().toISOString());
    expect(jobs.unsettledJobs().map((j) => j.id).sort()).toEqual(['open', 'vm']);
  });

  test('a failed job whose cleanup could not finalize its engine backup is unsettled too; a failed one that started a vm is not', () => {
    const jobs = jobsOf(catalog);
    const facts: Record<string, Parameters<typeof jobs.rememberFacts>[1]> = {
      failedOpen: { engineBackup: { vmId: VM, backupId: 'b1' }, engineBackupFinished: false },
      failedClosed: { engineBackup: { vmId: VM, backupId: 'b2' }, engineBackupFinished: true },
      failedVm: { vmStartedByJob: true },
    };
    for (const [id, f] of Object.entries(facts)) {
      jobs.insertJob(job(id), spec({ method: 'engine' }));
      jobs.updateJob(id, { state: 'running' });
      jobs.rememberFacts(id, f);
      jobs.updateJob(id, { state: 'failed', finishedAt: new Date().toISOString() });
    }
    expect(jobs.unsettledJobs().map((j) => j.id)).toEqual(['failedOpen']);
  });

  test('a settlement that fails leaves the facts unfinished (tried again at the next start-up) and warns in the job log', async () => {
    const jobs = jobsOf(catalog);
    jobs.insertJob(job('open'), spec({ method: 'engine' }));
    jobs.updateJob('open', { state: 'running' });
    jobs.rememberFacts('open', { engineBackup: { vmId: VM, backupId: 'b1' }, engineBackupFinished: false });
    jobs.markRunningInterrupted(new Date().toISOString());
    // an engine that cannot be reached: every request fails at once
    const engine = new EngineClient({ baseUrl: 'http://127.0.0.1:9/ovirt-engine', auth: { kind: 'password', user: 'x@internal', password: 'x' }, timeoutMs: 2000 });
    try {
      await settleInterruptedJobs(jobs.unsettledJobs(), jobs, engine);
    } finally {
      await engine.close().catch(() => undefined);
    }
    const lines = jobs.jobLog('open').filter((l) => l.message.includes('engine backup b1'));
    expect(lines).toEqual([{ at: expect.any(String), level: 'warn', message: expect.stringMatching(/^could not settle engine backup b1 of vm web01 left by this job \(tried again at the next start-up\): /) }]);
    expect(jobs.jobFacts('open').engineBackupFinished).toBe(false);
    expect(jobs.unsettledJobs().map((j) => j.id)).toEqual(['open']);
  });
});
