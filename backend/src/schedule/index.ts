export { CronSchedule, checkCron, isTimeZone, nextRuns, localTime } from './cron';
export { dueFire, triggerFor, nextFire, runWindow, windowState, freeSlots } from './plan';
export type { DueFire, WindowSpan } from './plan';
export { Scheduler, selectVms } from './scheduler';
export type { SchedulerDeps, SchedulerEngine, SchedulerQueue, PolicyJobRequest, RetentionHook } from './scheduler';
export { policyRetention, previewRetention } from './retention';
export type { PolicyRetentionDeps, RetentionRepository, PreviewRepository } from './retention';
export { PolicyService } from './service';
export type { PolicyServiceDeps, SavedPolicy } from './service';
