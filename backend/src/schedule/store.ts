/**
 * What the schedulers need from their store (PoliciesTable, in the catalog's file, satisfies
 * it), the way the job queue uses JobStore.
 */
import type { JobUser } from '../jobs';
import type { Policy, PolicyRun, PolicyRunState, PolicyRunTrigger, PolicyRunVm } from './model';

/** Who last saved a policy, with the engine groups they were in then: a scheduled run backs up
 *  in their name only what these rights still allow (their token is long gone by then). */
export interface PolicyOwner extends JobUser {
  groupIds: string[];
  groupNames: string[];
}

/** A policy as the scheduler keeps it: the API's view plus its owner and the fire-time watermarks. */
export interface StoredPolicy extends Policy {
  owner: PolicyOwner;
  /** Every fire time at or before this instant has been handled (run, or counted as missed). */
  firedThrough: string;
  /** The same for the verify schedule. */
  verifyFiredThrough: string;
}

/** A run as the scheduler works on it (more than the API shows). */
export interface StoredRun extends Omit<PolicyRun, 'vms'> {
  windowStart: string | null;
  concurrency: number;
}

export interface StoredRunVm extends PolicyRunVm {
  runId: string;
  hostId: string | null;
  /** The job is someone else's (a backup of this VM was pending when the run asked). */
  joined: boolean;
  finishedAt: string | null;
}

export interface NewRun {
  id: string;
  policy: StoredPolicy;
  trigger: PolicyRunTrigger;
  scheduledAt: string | null;
  missedRuns: number;
  createdAt: string;
  windowStart: string | null;
  windowEnd: string | null;
  requestedBy: JobUser;
  state?: PolicyRunState;
  message?: string | null;
  finishedAt?: string | null;
}


export interface PolicyStore {
  listPolicies(): StoredPolicy[];
  getPolicy(id: string): StoredPolicy | undefined;
  /** Inserts a run and, for a scheduled one, advances its policy's watermark to the fire time, in
   *  one transaction; false when that fire time already has a run. */
  insertRun(r: NewRun): boolean;
  getRun(id: string): StoredRun | undefined;
  /** Runs resolving or running, oldest first. */
  activeRuns(): StoredRun[];
  runVms(runId: string): StoredRunVm[];
  /** The run VMs whose latest job this is (several when runs of overlapping policies joined one). */
  runVmsByJob(jobId: string): StoredRunVm[];
  /** The run and its VMs as the run machine left them, in one transaction. */
  saveRun(run: StoredRun, vms: readonly StoredRunVm[]): void;
  setVerifyFiredThrough(id: string, at: string): void;
}
