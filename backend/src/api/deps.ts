import type { Readable } from 'stream';
import type { Logger } from 'pino';
import type { AuditList, AuditQuery, DamageView, PointSummary, ServiceAuditLog } from '../catalog';
import type { EngineClient } from '../engine';
import type { FileSessions, Job, JobFacts, JobList, JobLogEntry, JobQueue, JobState } from '../jobs';
import type { Repository } from '../repository';
import type { PointRestorer } from '../restore';
import type { PolicyService } from '../schedule';
import type { Authenticator } from './auth';
import type { NextMethods } from './nextMethod';
import type { DeletedVms } from './deletedVms';
import type { Permits } from './permits';
import type { ScrapeAccess } from './scrape';

/**
 * What the HTTP and WebSocket side is given by main.ts: the parts it calls, each as the
 * narrowest interface it uses, so a route cannot reach what it has no business with.
 */

/** The catalog as the API reads it: the point index, job history, policy run counts. */
export interface ApiCatalog {
  /** Newest first; each point as the JSON text of a PointSummary, and the next page's cursor. */
  listPointsJson(q: { vmId?: string; limit?: number; before?: string }): { rows: string[]; nextBefore: string | null };
  getPoint(id: string): PointSummary | undefined;
  lastPointByVm(vmIds: string[]): Map<string, PointSummary>;
  pointCountByVm(vmIds: string[]): Map<string, number>;
  vmsWithPoints(): Map<string, number>;
  repositoryTotals(): { pointCount: number; vmCount: number; chunkCount: number; usedBytes: number; logicalBytes: number; referencedBytes: number; chunkSize: number };
  getJob(id: string): Job | undefined;
  listJobs(q: { vmIds?: string[]; states?: JobState[]; before?: string; limit: number }): JobList;
  lastJobByVm(vmIds: string[]): Map<string, Job>;
  jobLog(jobId: string): JobLogEntry[];
  /** What a job's runner remembered (verify jobs: the VM of each point checked). */
  jobFacts(jobId: string): JobFacts;
  jobCounts(): Record<JobState, number>;
  jobTotals(): { bytesRead: number; bytesStored: number; succeeded: number; durationsMs: number[] };
  /** Policy runs' VM outcomes and runs by trigger (metrics). */
  policyOutcomes(): Array<{ policy: string; state: string; n: number }>;
  policyRuns(): Array<{ policy: string; trigger: string; n: number }>;
  /** Throws when the database cannot answer (health check). */
  ping(): void;
}


/** Disk images of a point, for downloads (restore/ owns them). */
export interface ApiImages {
  /** Guest bytes start..end (inclusive). */
  raw(pointId: string, device: string, start: number, end: number): Promise<Readable>;
  /** A qcow2 image of the disk written to a scratch file (removed by `release`). */
  qcow2(pointId: string, device: string): Promise<{ file: string; size: number }>;
  release(file: string): Promise<void>;
}

export interface ApiDeps {
  /** Restore planning (restore/ owns it; the job runs it). */
  restore: Pick<PointRestorer, 'planView'>;
  images: ApiImages;
  auth: Authenticator;
  /** What the caller may do: engine permits on objects, backup admins. */
  permits: Permits;
  /** Who may read /metrics and the details of /health. */
  scrape: Pick<ScrapeAccess, 'allows' | 'require'>;
  catalog: ApiCatalog;
  queue: JobQueue;
  policies: PolicyService;
  repository: Repository;
  repositoryPath: string;
  /** The service's own audit file (refused tokens, restores, policy changes), written to. */
  serviceAudit?: ServiceAuditLog;
  /** The whole audit log, read (the catalog's table, brought up to date with the files first). */
  audit: { list(q: AuditQuery): Promise<AuditList> };
  /** VMs the engine no longer has (their points are for backup admins). */
  deleted: DeletedVms;
  /** Damage marks of verify, cached briefly. */
  damage?: DamageView;
  /** The method each VM's next backup will use (the chain forecast is made for it). */
  nextMethods: Pick<NextMethods, 'forVms'>;
  /** The service account: what a portal user's filtered view hides (the VM's host). */
  serviceEngine: EngineClient;
  /** File-level restore sessions (Browse files…), and how long one may stay idle. */
  files: Pick<FileSessions, 'open' | 'get' | 'settled' | 'use' | 'stream' | 'close'>;
  fileIdleSeconds: number;
  version: string;
  startedAt: Date;
  corsOrigins: string[];
  tls: boolean;
  log: Logger;
}
