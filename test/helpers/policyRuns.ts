/**
 * What the policy suites share: a policy body with everything but what a test sets, and the
 * sync job a policy run's end queued (read from the service's catalog).
 */
import { randomBytes } from 'crypto';
import * as path from 'path';
import type { Job } from '../../backend/src/api/contract';
import { Catalog } from '../../backend/src/catalog';
import { jobsOf } from './stores';

/** A policy body with everything but what a test sets. */
export function policyBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `p-${randomBytes(3).toString('hex')}`,
    // 03:00 on January 1st: never fires during a test by itself
    schedule: '0 3 1 1 *',
    timeZone: 'Europe/Berlin',
    selection: { tag: 'daily' },
    retention: { keepLast: 7, daily: 7, weekly: 4, monthly: 12, yearly: 1 },
    lockDays: 0,
    concurrency: 1,
    window: null,
    enabled: true,
    ...over,
  };
}

/** The sync job the end of policy run `runId` queued, once it has ended (undefined: none in time). */
export async function syncJobOfRun(svcDataDir: string, runId: string, timeoutMs = 180_000): Promise<Job | undefined> {
  let sync: Job | undefined;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const c = Catalog.open(path.join(svcDataDir, 'catalog.sqlite'));
    try {
      const t = jobsOf(c);
      sync = t.listJobs({ limit: 500 }).jobs.find((j) => {
        const spec = t.jobSpec(j.id);
        return spec.kind === 'sync' && spec.origin?.runId === runId;
      });
    } finally {
      c.close();
    }
    if (sync && ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(sync.state)) return sync;
    await new Promise((r) => setTimeout(r, 500));
  }
  return sync;
}
