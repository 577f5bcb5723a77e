// The host page's toasts for finished jobs, from its own event stream.
import type { Job, WhoAmI } from '../../../backend/src/api/contract';
import { finishedJobToast } from '../logic/jobText';
import { finishedJobs, initialJobsState, jobsReducer, type JobsState } from '../logic/jobsState';
import type { Translate } from '../intl/messages';
import type { EventStream } from '../services/eventStream';
import { logError } from './pluginApi';
import type { OvirtPluginApi } from './pluginApiTypes';

/**
 * WebAdmin toasts for finished backups and restores, from the host page's event socket: jobs
 * this user requested (from any portal window, the Restore dialog included) and jobs started
 * from this window. A restore's toast names the VM or disks it created. Scheduled jobs of the
 * service account stay quiet here; the dashboard shows them.
 */
export class JobNotifier {
  private state: JobsState = initialJobsState;
  private me: Pick<WhoAmI, 'userId' | 'userName'> | null = null;
  private mine = new Set<string>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly api: OvirtPluginApi,
    private readonly stream: EventStream,
    private readonly t: Translate,
    private readonly locale: string,
  ) {}

  start(): void {
    this.unsubscribe = this.stream.subscribe((m) => {
      if (m.type === 'ready') this.me = m.user;
      const before = this.state;
      this.state = jobsReducer(before, { type: 'message', message: m });
      for (const job of finishedJobs(before, this.state)) this.notify(job);
    });
    this.stream.start();
  }

  stop(): void {
    this.unsubscribe?.();
    this.stream.stop();
  }

  /** A job started from this window: toast its end even if it was requested as another user. */
  track(job: Job): void {
    this.mine.add(job.id);
    this.state = jobsReducer(this.state, { type: 'loaded', jobs: [job] });
  }

  private notify(job: Job): void {
    const ours = this.mine.has(job.id) || (this.me !== null && job.requestedBy.id === this.me.userId);
    if (!ours) return;
    const { severity: sev, text } = finishedJobToast(job, this.t, this.locale);
    try {
      this.api.showToast(sev, text);
    } catch (err) {
      logError('showToast failed', err);
    }
  }
}
