/** Backup policies: cron fire times, windows, retention, the policy run's state machine and the
 *  scheduler that drives it, scheduled verify. */
export { CronSchedule, checkCron, isTimeZone, nextRuns, localTime } from './cron';
export { dueFire, triggerFor, nextFire, runWindow, windowState, freeSlots } from './plan';
export type { DueFire, WindowSpan } from './plan';
export { Scheduler } from './scheduler';
export type { SchedulerDeps, SchedulerQueue, RetentionHook } from './scheduler';
export { selectVms } from './selection';
export type { SchedulerEngine } from './selection';
export { next as nextRunState, MAX_ATTEMPTS } from './runMachine';
export type { RunSnapshot, RunEvent, RunEffect, RunContext, ChildJob } from './runMachine';
export type { PolicyStore, PolicyOwner } from './store';
export { ownerCheck, isBackupAdmin, type OwnerCheck, type OwnerEngine } from './owner';
export { GcScheduler, GC_SCHEDULER_ACTOR } from './gcScheduler';
export type { GcSchedulerDeps } from './gcScheduler';
export { policyRetention, previewRetention } from './retention';
export { policySync } from './policySync';
export type { PolicySyncDeps } from './policySync';
export type { PolicyRetentionDeps, RetentionRepository, PreviewRepository } from './retention';
export { PolicyService } from './service';
export type { PolicyServiceDeps, SavedPolicy } from './service';
export { VerifyScheduler, VERIFY_SCHEDULER } from './verifyScheduler';
export { BootCheckScheduler, BOOT_CHECK_SCHEDULER, BOOT_CHECK_PERIOD_MS } from './bootCheckScheduler';
export type { BootCheckSchedulerDeps } from './bootCheckScheduler';
export type { VerifySchedulerDeps } from './verifyScheduler';
export { PoliciesTable, toApiPolicy, toApiRun } from './policiesTable';
export type { StoredPolicy, StoredRun, StoredRunVm, NewRun } from './store';
export type * from './model';
