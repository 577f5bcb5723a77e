import type { Job, PolicyRun } from '../../backend/src/api/contract';
import * as S from '../../backend/src/api/schemas';
import { Repository } from '../../backend/src/repository';
import type { apiClient } from './serviceProcess';

type Api = ReturnType<typeof apiClient>;

/** Polls `probe` until it gives a value. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The job once it has ended, read through the API (every reply checked by the strict schema). */
export async function jobDone(api: Api, jobId: string, timeoutMs = 240_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.get(`/api/v1/jobs/${jobId}`);
    expect(r.status).toBe(200);
    const job = S.JobDetail.parse(r.body);
    if (!['queued', 'running'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} not done: ${JSON.stringify(job)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Backup now of a VM through the API, waited for: the job, which must have succeeded. */
export async function backupDone(api: Api, vmId: string, timeoutMs = 240_000): Promise<Job> {
  const r = await api.post(`/api/v1/vms/${vmId}/backups`);
  expect(r.status).toBe(202);
  const job = await jobDone(api, S.StartBackupResponse.parse(r.body).job.id, timeoutMs);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  return job;
}

/** A policy's run once it has ended, read through the API. */
export async function policyRunDone(api: Api, policyId: string, runId: string, timeoutMs = 240_000): Promise<PolicyRun> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.get(`/api/v1/policies/${policyId}`);
    expect(r.status).toBe(200);
    const run = S.PolicyDetail.parse(r.body).runs.find((x) => x.id === runId);
    if (run && !['resolving', 'running'].includes(run.state)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} not done: ${JSON.stringify(run)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** The service's repository opened beside it (as the operator's CLI would), closed after `fn`. */
export async function withRepository<T>(dir: string, fn: (r: Repository) => Promise<T>): Promise<T> {
  const r = await Repository.open(dir);
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}
