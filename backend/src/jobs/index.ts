export { JobQueue } from './queue';
export type { JobQueueOptions, JobQueueEvents } from './queue';
export { backupRunner } from './backupRunner';
export type { BackupRunnerDeps } from './backupRunner';
export { settleInterruptedJobs } from './interrupted';
export { ProgressTracker } from './progress';
export type { JobStore, JobRunner, JobRunContext, JobLimits, RunnerProgress, SubmitJob } from './types';
export { restoreRunner, planPointRestore, planView } from './restoreRunner';
export type { RestoreDeps } from './restoreRunner';
