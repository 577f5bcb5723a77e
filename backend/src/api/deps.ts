import type { Logger } from 'pino';
import type { EngineClient } from '../engine';
import type { JobQueue } from '../jobs';
import type { Repository } from '../repository';
import type { PolicyService } from '../schedule';
import type { Authenticator } from './auth';
import type { ServiceAuditLog } from './auditLog';
import type { DamageView } from './routes/verify';
import type { Readable } from 'stream';
import type { AuditKind, AuditList, Job, JobList, JobLogEntry, JobState, PointSummary, RestorePlanView, RestoreRequestBody } from './contract';

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
  /** What a job's runner remembered (verify jobs: the VM of each point checked). */
  jobMeta?(jobId: string): Record<string, unknown>;
  jobCounts(): Record<JobState, number>;
  jobTotals(): { bytesRead: number; bytesStored: number; succeeded: number; durationsMs: number[] };
  /** Policy runs' VM outcomes and runs by trigger (metrics). */
  policyOutcomes?(): Array<{ policy: string; state: string; n: number }>;
  policyRuns?(): Array<{ policy: string; trigger: string; n: number }>;
  /** Throws when the database cannot answer (health check). */
  ping(): void;
}

/** Restore planning, as main.ts wires it (the API never sees the planner's internals). */
export interface ApiRestore {
  /** The plan for a point now; VMs offered as targets are those in `visibleVmIds`. */
  plan(pointId: string, body: RestoreRequestBody, visibleVmIds: ReadonlySet<string>): Promise<RestorePlanView>;
}

/** Disk images of a point, for downloads. */
export interface ApiImages {
  /** Guest bytes start..end (inclusive). */
  raw(pointId: string, device: string, start: number, end: number): Promise<Readable>;
  /** A qcow2 image of the disk written to a scratch file (removed by `release`). */
  qcow2(pointId: string, device: string): Promise<{ file: string; size: number }>;
  release(file: string): Promise<void>;
}

/** What `GET /audit` asks for (times as ISO 8601 UTC; `until` excluded). */
export interface ApiAuditQuery {
  since?: string;
  until?: string;
  actions?: AuditKind[];
  vmKey?: string;
  cursor?: string;
  limit: number;
}

/** The audit log as the API reads it (main.ts: the catalog's table, brought up to date with the
 *  audit files first). */
export interface ApiAudit {
  list(q: ApiAuditQuery): Promise<AuditList>;
}

export interface ApiDeps {
  restore: ApiRestore;
  images: ApiImages;
  auth: Authenticator;
  catalog: ApiCatalog;
  queue: JobQueue;
  policies: PolicyService;
  repository: Repository;
  repositoryPath: string;
  /** The service's own audit file (refused tokens, restores, policy changes), written to. */
  serviceAudit?: ServiceAuditLog;
  /** The whole audit log, read. */
  audit: ApiAudit;
  /** Damage marks of verify, cached briefly. */
  damage?: DamageView;
  /** The service account: what a portal user's filtered view hides (the VM's host). */
  serviceEngine: EngineClient;
  version: string;
  startedAt: Date;
  corsOrigins: string[];
  tls: boolean;
  log: Logger;
}
