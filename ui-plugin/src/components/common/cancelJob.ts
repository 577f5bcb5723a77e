import type { Job } from '../../../../backend/src/api/contract';
import { errorReason } from '../../logic/errorText';
import type { PageContext } from '../../pageContext';

/** Asks the service to cancel a job; the result arrives as a `job` event. */
export function cancelJob(ctx: PageContext, job: Job): void {
  ctx.client.jobCancel(job.id).catch((err: unknown) => ctx.bridge.toast('danger', `${job.vmName}: ${errorReason(err)}`));
}
