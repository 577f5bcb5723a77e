import { z } from 'zod';
import type * as C from './contract';

/**
 * The contract's response bodies as zod schemas: the source of the OpenAPI description, and
 * what the API tests check every real response against (strict: a field the description does
 * not name fails), so description, types and routes cannot drift apart unnoticed.
 */
const iso = z.string().datetime({ offset: true });
const fullReason = z.enum(['first-backup', 'bitmap-missing', 'bitmap-inconsistent', 'bitmap-not-recording', 'bitmap-busy', 'bitmap-mismatch', 'disk-resized', 'node-changed', 'parent-missing', 'parent-damaged', 'forced']);
const jobState = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
const phase = z.enum(['queued', 'starting-vm', 'preparing', 'frozen', 'copying', 'committing', 'stopping-vm', 'done']);
const bytes = z.number().int().nonnegative();

export const JobProgress = z.strictObject({
  phase,
  disk: z.string().nullable(),
  bytesDone: bytes,
  bytesTotal: bytes,
  disksDone: bytes,
  disksTotal: bytes,
  rateBytesPerSec: z.number().nonnegative(),
  etaSeconds: z.number().nonnegative().nullable(),
  updatedAt: iso,
});

export const Job = z.strictObject({
  id: z.string().uuid(),
  kind: z.literal('backup'),
  state: jobState,
  vmId: z.string(),
  vmName: z.string(),
  hostId: z.string().nullable(),
  requestedBy: z.strictObject({ id: z.string(), name: z.string() }),
  forceFull: z.boolean(),
  createdAt: iso,
  startedAt: iso.nullable(),
  finishedAt: iso.nullable(),
  cancelRequested: z.boolean(),
  progress: JobProgress.nullable(),
  result: z
    .strictObject({
      pointId: z.string(),
      bytesRead: bytes,
      bytesStored: bytes,
      durationMs: bytes,
      disks: z.array(z.strictObject({ disk: z.string(), mode: z.enum(['full', 'incremental']), reason: z.union([fullReason, z.literal('incremental')]) })),
      warnings: z.array(z.string()),
    })
    .nullable(),
  error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
});

export const JobDetail = Job.extend({
  log: z.array(z.strictObject({ at: iso, level: z.enum(['info', 'warn', 'error']), message: z.string() })),
});
export const JobList = z.strictObject({ jobs: z.array(Job), nextBefore: z.string().nullable() });
export const StartBackupRequest = z.strictObject({ full: z.boolean().optional() });
export const StartBackupResponse = z.strictObject({ job: Job, joined: z.boolean() });

export const PointDisk = z.strictObject({
  device: z.string(),
  diskId: z.string().nullable(),
  alias: z.string().nullable(),
  format: z.string(),
  virtualSize: bytes,
  mode: z.enum(['full', 'incremental']),
  reason: z.union([fullReason, z.literal('incremental')]),
  bitmapPersistent: z.boolean(),
  bytesRead: bytes,
  bytesStored: bytes,
  chunksNew: bytes,
  chunksReused: bytes,
  chunksZero: bytes,
});

export const PointSummary = z.strictObject({
  id: z.string(),
  vmId: z.string(),
  vmName: z.string(),
  createdAt: iso,
  completedAt: iso,
  parentPointId: z.string().nullable(),
  consistency: z.enum(['crash', 'filesystem']),
  virtualSize: bytes,
  bytesRead: bytes,
  bytesStored: bytes,
  durationSeconds: z.number().nonnegative(),
  lockedUntil: iso.nullable(),
  disks: z.array(PointDisk),
});
export const PointList = z.strictObject({ points: z.array(PointSummary), nextBefore: z.string().nullable() });

export const PointDetail = PointSummary.extend({
  ovfAvailable: z.boolean(),
  ovf: z
    .strictObject({
      name: z.string().nullable(),
      description: z.string().nullable(),
      memoryMiB: z.number().nullable(),
      cpus: z.number().nullable(),
      osType: z.string().nullable(),
      nics: z.array(z.strictObject({ name: z.string(), mac: z.string().nullable(), network: z.string().nullable() })),
      disks: z.array(z.strictObject({ diskId: z.string(), alias: z.string().nullable(), sizeBytes: z.number().nullable() })),
    })
    .nullable(),
  excludedDisks: z.array(z.strictObject({ diskId: z.string(), alias: z.string(), reason: z.string() })),
  startedPaused: z.boolean(),
  jobId: z.string().nullable(),
});

export const VmSummary = z.strictObject({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  status: z.string(),
  clusterId: z.string().nullable(),
  lastPoint: PointSummary.nullable(),
  lastJob: Job.nullable(),
  pointCount: bytes,
  chain: z.array(
    z.strictObject({
      diskId: z.string(),
      alias: z.string(),
      state: z.enum(['ok', 'will-be-full']),
      reason: z.union([fullReason, z.literal('excluded')]).nullable(),
      excluded: z.boolean(),
    }),
  ),
});
export const VmList = z.strictObject({ vms: z.array(VmSummary) });

export const RepositoryStatus = z.strictObject({
  chunkSize: bytes,
  pointCount: bytes,
  vmCount: bytes,
  chunkCount: bytes,
  usedBytes: bytes,
  logicalBytes: bytes,
  referencedBytes: bytes,
  dedupRatio: z.number().nonnegative(),
  compressionRatio: z.number().nonnegative(),
  freeBytes: z.number().nonnegative().nullable(),
});

export const Health = z.strictObject({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  uptimeSeconds: z.number().nonnegative(),
  checks: z.array(z.strictObject({ name: z.enum(['catalog', 'repository', 'engine']), ok: z.boolean(), message: z.string() })),
});

export const WhoAmI = z.strictObject({ userId: z.string(), userName: z.string() });
export const ApiError = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) });

/** Compile-time check that each schema's output is the contract type (and back). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(): T | undefined => undefined;
agree<Same<z.output<typeof Job>, C.Job>>();
agree<Same<z.output<typeof JobDetail>, C.JobDetail>>();
agree<Same<z.output<typeof PointSummary>, C.PointSummary>>();
agree<Same<z.output<typeof PointList>, C.PointList>>();
agree<Same<z.output<typeof PointDetail>, C.PointDetail>>();
agree<Same<z.output<typeof VmSummary>, C.VmSummary>>();
agree<Same<z.output<typeof RepositoryStatus>, C.RepositoryStatus>>();
agree<Same<z.output<typeof Health>, C.Health>>();
agree<Same<z.output<typeof StartBackupResponse>, C.StartBackupResponse>>();
