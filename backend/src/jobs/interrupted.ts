import type { Job } from './model';
import { describeError } from '../errors';
import type { EngineClient } from '../engine';
import type { JobStore } from './types';

/**
 * What a job killed with its process may have left outside QEMU: a VM that was down and was
 * started paused for the backup. It is stopped again if it is still paused (a VM someone has
 * since resumed is left alone). QEMU-side leftovers (exports, fleece nodes, frozen bitmaps)
 * are removed by the VM's next backup, which holds the VM's repository lock while doing it.
 */
export async function settleInterruptedJobs(jobs: Job[], store: JobStore, engine: EngineClient): Promise<void> {
  for (const job of jobs) {
    const facts = store.jobFacts(job.id);
    if (!facts.vmStartedByJob || facts.vmStoppedAgain) continue;
    const note = (level: 'info' | 'warn', message: string): void => store.appendLog(job.id, { at: new Date().toISOString(), level, message });
    try {
      const vm = await engine.getVm(job.vmId);
      if (vm.status === 'paused') {
        await engine.stopVm(vm.id, { reason: 'olvm-backup: the backup that started this vm was interrupted' });
        await engine.waitForVmStatus(vm.id, ['down'], { timeoutMs: 120_000 });
        note('info', `vm ${vm.name} had been started paused for this job: stopped it again`);
      } else {
        note('info', `vm ${vm.name} had been started for this job and is now ${vm.status}: left as it is`);
      }
      store.rememberFacts(job.id, { vmStoppedAgain: true });
    } catch (err) {
      note('warn', `could not stop vm ${job.vmName} that was started for this job: ${describeError(err)}`);
    }
  }
}
