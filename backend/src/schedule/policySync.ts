/**
 * The policies' off-site copy (`syncTo`, the 3-2-1 rule): after a run, each VM whose backup under
 * the policy succeeded gets a `sync` job that copies its new point — and any of its points the
 * destination still lacks — into the policy's destination repository (jobs/syncRunner.ts). Called
 * after the run's retention (a point it pruned is not copied). The job is queued, not awaited: the
 * run ends now, the copy runs in the queue's own pool of repository syncs.
 */
import { describeError } from '../errors';
import type { Job, SubmitJob } from '../jobs';
import type { Logger } from '../util/log';
import type { RetentionHook } from './scheduler';

export interface PolicySyncDeps {
  queue: { submit(req: SubmitJob): { job: Job; joined: boolean } };
  jobs: { getJob(id: string): Job | undefined };
  log: Logger;
}

/** The after-run hook that queues the sync jobs (a no-op for a policy without syncTo). */
export function policySync(d: PolicySyncDeps): RetentionHook {
  return (policy, run, vms) => {
    const to = policy.syncTo;
    if (!to) return Promise.resolve();
    for (const vm of vms) {
      if (vm.state !== 'succeeded' || !vm.jobId) continue;
      const pointId = d.jobs.getJob(vm.jobId)?.result?.pointId;
      if (!pointId) continue;
      try {
        const { job } = d.queue.submit({
          vmId: vm.vmId,
          vmName: vm.vmName,
          hostId: null,
          requestedBy: { id: `policy:${policy.id}`, name: `policy ${policy.name}` },
          spec: { v: 1, kind: 'sync', pointId, to, origin: { policyId: policy.id, policyName: policy.name, runId: run.id, trigger: run.trigger, scheduledAt: run.scheduledAt } },
        });
        d.log.info({ runId: run.id, vm: vm.vmName, pointId, to, jobId: job.id }, 'off-site copy queued');
      } catch (err) {
        d.log.warn({ runId: run.id, vm: vm.vmName, pointId, to, err: describeError(err) }, 'the off-site copy could not be queued');
      }
    }
    return Promise.resolve();
  };
}
