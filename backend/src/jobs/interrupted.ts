import type { Job } from './model';
import { settleEngineBackup } from '../backup';
import { describeError } from '../errors';
import type { EngineClient } from '../engine';
import type { JobStore } from './types';

/** How long one engine backup's settlement may take (finalize, transfers ended). */
const SETTLE_TIMEOUT_MS = 10 * 60_000;
/** How long the backups of the VMs being settled wait for the settlement (JobQueue.hold): one
 *  engine backup's settlement and a VM's stop, with room to spare. */
export const SETTLE_HOLD_MS = SETTLE_TIMEOUT_MS + 5 * 60_000;

/**
 * What a job killed with its process may have left outside QEMU, settled at start-up:
 * - an engine backup (engine method) still `ready` or `initializing`, with image transfers
 *   open: finalized through settleEngineBackup, by the id the job recorded before asking for
 *   it (a VM with an open backup can be neither backed up again nor snapshotted); also one
 *   a failed or cancelled job's own cleanup could not finalize;
 * - a VM that was down and was started paused for the backup of an interrupted job: stopped
 *   again if it is still paused (a VM someone has since resumed is left alone).
 * Each outcome goes to the job's log; what fails is tried again at the next start-up (the job
 * stays in `unsettledJobs` until its facts say it is done). QEMU-side leftovers (exports,
 * fleece nodes, frozen bitmaps) are removed by the VM's next backup, which holds the VM's
 * repository lock while doing it.
 */
export async function settleInterruptedJobs(jobs: Job[], store: JobStore, engine: EngineClient): Promise<void> {
  for (const job of jobs) {
    const facts = store.jobFacts(job.id);
    const note = (level: 'info' | 'warn', message: string): void => store.appendLog(job.id, { at: new Date().toISOString(), level, message });
    if (facts.engineBackup && !facts.engineBackupFinished) {
      const ref = facts.engineBackup;
      try {
        // bounded: the schedulers start only once the settlement is over
        const line = await settleEngineBackup(engine, ref, AbortSignal.timeout(SETTLE_TIMEOUT_MS));
        note('info', `engine backup ${ref.backupId} left by this job: ${line}`);
        store.rememberFacts(job.id, { engineBackupFinished: true });
      } catch (err) {
        note('warn', `could not settle engine backup ${ref.backupId} of vm ${job.vmName} left by this job (tried again at the next start-up): ${describeError(err)}`);
      }
    }
    // a failed job stopped its VM itself (or said why it could not): only a dead process did not
    if (job.state === 'interrupted' && facts.vmStartedByJob && !facts.vmStoppedAgain) await stopStartedVm(job, store, engine, note);
  }
}

async function stopStartedVm(job: Job, store: JobStore, engine: EngineClient, note: (level: 'info' | 'warn', message: string) => void): Promise<void> {
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
    note('warn', `could not stop vm ${job.vmName} that was started for this job (tried again at the next start-up): ${describeError(err)}`);
  }
}
