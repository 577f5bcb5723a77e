import type { Logger } from 'pino';
import type { EngineClient } from '../engine';
import type { JobQueue } from '../jobs';
import type { Repository } from '../repository';
import type { PolicyService } from '../schedule';
import type { Authenticator } from './auth';
import type { Job, JobList, JobLogEntry, JobState, PointSummary } from './contract';

/** The catalog as the API reads it (main.ts adapts the SQLite catalog to this). */
export interface ApiCatalog {
  /** Newest first; each point as the JSON text of a PointSummary, and the next page's cursor. */
  listPointsJson(q: { vmId?: string; limit?: number; before?: string }): { rows: string[]; nextBefore: string | null };
  getPoint(id: string): PointSummary | undefined;
  lastPointByVm(vmIds: string[]): Map<string, PointSummary>;
  pointCountByVm(vmIds: string[]): Map<string, number>;
  repositoryTotals(): { pointCount: number; vmCount: number; chunkCount: number; usedBytes: number; logicalBytes: number; referencedBytes: number; chunkSize: number };
  getJob(id: string): Job | undefined;
  listJobs(q: { vmIds?: string[]; states?: JobState[]; before?: string; limit: number }): JobList;
  lastJobByVm(vmIds: string[]): Map<string, Job>;
  jobLog(jobId: string): JobLogEntry[];
  jobCounts(): Record<JobState, number>;
  jobTotals(): { bytesRead: number; bytesStored: number; succeeded: number; durationsMs: number[] };
  /** Policy runs' VM outcomes and runs by trigger (metrics). */
  policyOutcomes?(): Array<{ policy: string; state: string; n: number }>;
  policyRuns?(): Array<{ policy: string; trigger: string; n: number }>;
  /** Throws when the database cannot answer (health check). */
  ping(): void;
}

export interface ApiDeps {
  auth: Authenticator;
  catalog: ApiCatalog;
  queue: JobQueue;
  policies: PolicyService;
  repository: Repository;
  repositoryPath: string;
  /** The service account: what a portal user's filtered view hides (the VM's host). */
  serviceEngine: EngineClient;
  version: string;
  startedAt: Date;
  corsOrigins: string[];
  tls: boolean;
  log: Logger;
}
