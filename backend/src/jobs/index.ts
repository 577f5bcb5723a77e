/** The job queue: limits, persistence (JobsTable), progress, cancellation, typed job specs, and
 *  the runners of each kind of job. */
export { JobQueue } from './queue';
export type { JobQueueOptions, JobQueueEvents } from './queue';
export { JobsTable, INTERRUPTED_ERROR } from './jobsTable';
export type { JobQuery, JobTotals } from './jobsTable';
export { backupRunner } from './backupRunner';
export type { BackupRunnerDeps } from './backupRunner';
export { settleInterruptedJobs, SETTLE_HOLD_MS } from './interrupted';
export { ProgressTracker } from './progress';
export { byKind } from './types';
export type { JobStore, JobPatch, JobRunner, JobRunContext, JobLimits, KindRunners, SubmitJob } from './types';
export type { JobSpec, BackupSpec, RestoreSpec, VerifySpec, SyncSpec, VerifyTarget, JobOrigin, JobFacts, SpecOf } from './spec';
export { syncRunner } from './syncRunner';
export type { SyncRunnerDeps } from './syncRunner';
export { restoreRunner } from './restoreRunner';
export { verifyRunner } from './verifyRunner';
export { bootCheckRunner } from './bootCheckRunner';
export type { BootCheckRunnerDeps } from './bootCheckRunner';
export type { VerifyRunnerDeps } from './verifyRunner';
export type * from './model';
export { JOB_PHASES, JOB_STATES, TERMINAL_JOB_STATES, REPOSITORY_JOB_VM_ID } from './model';
export { FileSessions } from './fileSessions';
export type { FileAction, FileAuditRecord, FileSessionHolder, FileSessionSnapshot, FileSessionsOptions, FileSessionState } from './fileSessions';
