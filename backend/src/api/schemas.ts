import { z } from 'zod';
import { SERVICE_AUDIT_KINDS } from '../catalog';
import { MAX_LOCK_DAYS } from '../config';
import { JOB_PHASES, JOB_STATES } from '../jobs';
import { AUDIT_ACTIONS, BOOT_CHECK_STATES, FULL_REASONS, GFS_RULES } from '../repository';
import { POINT_METHODS } from '../repository/model';
import { BACKUP_METHODS, CONSISTENCY_MODES } from '../backup';
import type * as C from './contract';

/**
 * The contract's response bodies as zod schemas: the source of the OpenAPI description, and
 * what the API tests check every real response against (strict: a field the description does
 * not name fails), so description, types and routes cannot drift apart unnoticed.
 */
const iso = z.string().datetime({ offset: true });
const fullReason = z.enum(FULL_REASONS);
const jobState = z.enum(JOB_STATES);
const phase = z.enum(JOB_PHASES);
const restoreMode = z.enum(['vm', 'disks']);
const bytes = z.number().int().nonnegative();
/** What a request may ask for (a 400 names the allowed values). */
export const backupMethod = z.enum(BACKUP_METHODS, { error: `must be one of ${BACKUP_METHODS.join(', ')}` });
export const consistencyMode = z.enum(CONSISTENCY_MODES, { error: `must be one of ${CONSISTENCY_MODES.join(', ')}` });
const pointMethod = z.enum(POINT_METHODS);
const bootState = z.enum(BOOT_CHECK_STATES);

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
  kind: z.enum(['backup', 'restore', 'verify', 'bootcheck', 'sync']),
  state: jobState,
  vmId: z.string(),
  vmName: z.string(),
  hostId: z.string().nullable(),
  requestedBy: z.strictObject({ id: z.string(), name: z.string() }),
  forceFull: z.boolean(),
  restore: z.strictObject({ pointId: z.string(), mode: restoreMode, target: z.string().nullable() }).nullable(),
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
      method: pointMethod.optional(),
      restored: z
        .strictObject({
          vmId: z.string().nullable(),
          vmName: z.string().nullable(),
          disks: z.array(z.strictObject({ device: z.string(), diskId: z.string(), name: z.string(), verified: z.boolean() })),
        })
        .optional(),
      verified: z.strictObject({ points: bytes, damaged: z.array(z.string()), quarantined: bytes, cleared: z.array(z.string()) }).optional(),
      bootCheck: z.strictObject({ state: bootState, reason: z.string(), durationMs: bytes, accel: z.enum(['kvm', 'tcg']) }).optional(),
      synced: z.strictObject({ to: z.string(), copied: z.array(z.string()), skipped: bytes }).optional(),
    })
    .nullable(),
  error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
});

export const JobDetail = Job.extend({
  log: z.array(z.strictObject({ at: iso, level: z.enum(['info', 'warn', 'error']), message: z.string() })),
});
export const JobList = z.strictObject({ jobs: z.array(Job), nextBefore: z.string().nullable() });
export const StartBackupRequest = z.strictObject({ full: z.boolean().optional(), method: backupMethod.optional(), consistency: consistencyMode.optional() });
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
  method: pointMethod,
  virtualSize: bytes,
  bytesRead: bytes,
  bytesStored: bytes,
  durationSeconds: z.number().nonnegative(),
  lockedUntil: iso.nullable(),
  disks: z.array(PointDisk),
  bootCheck: z.strictObject({ state: bootState, at: iso }).nullable(),
});
export const PointList = z.strictObject({ points: z.array(PointSummary), nextBefore: z.string().nullable() });

const OvfSummary = z.strictObject({
  name: z.string().nullable(),
  description: z.string().nullable(),
  memoryMiB: z.number().nullable(),
  cpus: z.number().nullable(),
  osType: z.string().nullable(),
  nics: z.array(z.strictObject({ name: z.string(), mac: z.string().nullable(), network: z.string().nullable() })),
  disks: z.array(z.strictObject({ diskId: z.string(), alias: z.string().nullable(), sizeBytes: z.number().nullable() })),
});

export const PointDetail = PointSummary.extend({
  ovfAvailable: z.boolean(),
  ovf: OvfSummary.nullable(),
  excludedDisks: z.array(z.strictObject({ diskId: z.string(), alias: z.string(), reason: z.string() })),
  startedPaused: z.boolean(),
  jobId: z.string().nullable(),
  damaged: z.boolean(),
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
  nextMethod: pointMethod,
  chain: z.array(
    z.strictObject({
      diskId: z.string(),
      alias: z.string(),
      state: z.enum(['ok', 'will-be-full']),
      reason: z.union([fullReason, z.literal('excluded')]).nullable(),
      excluded: z.boolean(),
    }),
  ),
  policies: z.array(z.string()),
  damagedPoints: bytes.optional(),
  access: z.strictObject({ backup: z.boolean(), download: z.boolean(), restoreInto: z.boolean() }),
});
export const VmList = z.strictObject({ vms: z.array(VmSummary) });
export const DeletedVm = z.strictObject({ id: z.string(), name: z.string(), pointCount: z.number().int().nonnegative(), lastPoint: PointSummary, ovf: OvfSummary.nullable() });
export const DeletedVmList = z.strictObject({ vms: z.array(DeletedVm) });

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

export const WhoAmI = z.strictObject({ userId: z.string(), userName: z.string(), backupAdmin: z.boolean() });
export const HealthStatus = z.strictObject({ status: z.enum(['ok', 'degraded']) });
export const ApiError = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) });

export const RestoreRequestBody = z.strictObject({
  mode: restoreMode,
  clusterId: z.string().uuid().optional(),
  vmName: z.string().trim().min(1).max(255).regex(/^[\w.-]+$/, 'may hold letters, digits, "_", "-" and "." only').optional(),
  fromOvf: z.boolean().optional(),
  regenerateIds: z.boolean().optional(),
  regenerateMacs: z.boolean().optional(),
  attachToVmId: z.string().uuid().optional(),
  useProxy: z.boolean().optional(),
  disks: z
    .array(
      z.strictObject({
        device: z.string().min(1).max(200),
        include: z.boolean(),
        name: z.string().trim().min(1).max(255).regex(/^[\w.-]+$/, 'may hold letters, digits, "_", "-" and "." only').optional(),
        storageDomainId: z.string().uuid().optional(),
      }),
    )
    .max(64)
    .optional(),
});

export const RestorePlanView = z.strictObject({
  pointId: z.string(),
  sourceVm: z.strictObject({ id: z.string(), name: z.string() }),
  mode: restoreMode,
  vm: z
    .strictObject({
      name: z.string(),
      clusterId: z.string(),
      clusterName: z.string(),
      regenerateIds: z.boolean(),
      regenerateMacs: z.boolean(),
      description: z.string(),
      nics: z.array(z.strictObject({ name: z.string(), mac: z.string().nullable(), network: z.string().nullable(), vnicProfileId: z.string().nullable() })),
    })
    .nullable(),
  attachToVmId: z.string().nullable(),
  useProxy: z.boolean(),
  disks: z.array(
    z.strictObject({
      device: z.string(),
      diskId: z.string(),
      name: z.string(),
      storageDomainId: z.string(),
      storageDomainName: z.string(),
      format: z.enum(['cow', 'raw']),
      sparse: z.boolean(),
      provisionedSize: bytes,
      dataBytes: bytes,
      interface: z.string(),
      bootable: z.boolean(),
    }),
  ),
  problems: z.array(z.strictObject({ severity: z.enum(['error', 'warning']), code: z.string(), message: z.string(), subject: z.string().optional() })),
  ok: z.boolean(),
  targets: z.strictObject({
    clusters: z.array(z.strictObject({ id: z.string(), name: z.string() })),
    storageDomains: z.array(z.strictObject({ id: z.string(), name: z.string(), availableBytes: z.number().nullable(), usable: z.boolean() })),
    vms: z.array(z.strictObject({ id: z.string(), name: z.string() })),
  }),
});
export const StartRestoreResponse = z.strictObject({ job: Job, plan: RestorePlanView });
export const DownloadTicket = z.strictObject({ url: z.string(), expiresAt: iso, sizeBytes: bytes, format: z.enum(['raw', 'qcow2']), fileName: z.string() });
export const DownloadRequest = z.strictObject({ format: z.enum(['raw', 'qcow2']).optional() });

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
agree<Same<z.output<typeof HealthStatus>, C.HealthStatus>>();
agree<Same<z.output<typeof WhoAmI>, C.WhoAmI>>();
agree<Same<z.output<typeof DeletedVmList>, C.DeletedVmList>>();
agree<Same<z.output<typeof StartBackupResponse>, C.StartBackupResponse>>();
agree<Same<z.output<typeof RestorePlanView>, C.RestorePlanView>>();
agree<Same<z.output<typeof StartRestoreResponse>, C.StartRestoreResponse>>();
agree<Same<z.output<typeof DownloadTicket>, C.DownloadTicket>>();
agree<Same<z.output<typeof RestoreRequestBody>, C.RestoreRequestBody>>();

// ---- backup policies ----
const count = z.number().int().min(0).max(100_000);
export const PolicySelection = z.union([
  z.strictObject({ vmIds: z.array(z.string().uuid('must be vm ids (UUIDs)')).min(1).max(1000) }),
  z.strictObject({ tag: z.string().trim().min(1).max(255) }),
  z.strictObject({ search: z.string().trim().min(1).max(1000) }),
], { error: 'must be one of {"vmIds": [...]}, {"tag": "..."} or {"search": "..."}' });
export const PolicyInput = z.strictObject({
  name: z.string().trim().min(1).max(100),
  schedule: z.string().trim().min(1).max(200),
  timeZone: z.string().min(1).max(100),
  selection: PolicySelection,
  retention: z.strictObject({ keepLast: count, daily: count, weekly: count, monthly: count, yearly: count }),
  lockDays: z.number().int().min(0).max(MAX_LOCK_DAYS).default(0),
  concurrency: z.number().int().min(1).max(100).default(2),
  window: z.strictObject({ startMinutes: z.number().int().min(0).max(1439).optional(), durationMinutes: z.number().int().min(1).max(10_080) }).nullable().default(null),
  enabled: z.boolean().default(true),
  consistency: consistencyMode.optional(),
  method: backupMethod.optional(),
  verifySchedule: z.string().trim().min(1).max(200).optional(),
  bootCheck: z.enum(['off', 'newest-weekly'], { error: 'must be off or newest-weekly' }).optional(),
  syncTo: z.string().trim().min(1).max(4096).optional(),
});
export const RetentionPreviewRequest = z.strictObject({ selection: PolicySelection, retention: PolicyInput.shape.retention, timeZone: PolicyInput.shape.timeZone });
export const RetentionPreview = z.strictObject({
  keepsAll: z.boolean(),
  timeZone: z.string(),
  at: iso,
  vms: z.array(z.strictObject({
    vmId: z.string(),
    vmName: z.string(),
    points: z.array(z.strictObject({
      pointId: z.string(),
      createdAt: iso,
      action: z.enum(['keep', 'remove', 'locked']),
      keptBy: z.array(z.enum(GFS_RULES)),
      lockedUntil: iso.nullable(),
    })),
  })),
  totals: z.strictObject({ keep: z.number().int(), remove: z.number().int(), locked: z.number().int() }),
});
agree<Same<z.output<typeof RetentionPreviewRequest>, C.RetentionPreviewRequest>>();
agree<Same<z.output<typeof RetentionPreview>, C.RetentionPreview>>();
const jobUser = z.strictObject({ id: z.string(), name: z.string() });
export const Policy = PolicyInput.extend({ id: z.string().uuid(), createdAt: iso, updatedAt: iso, updatedBy: jobUser });
export const PolicyRunVm = z.strictObject({
  vmId: z.string(),
  vmName: z.string(),
  state: z.enum(['pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled']),
  jobId: z.string().nullable(),
  attempts: bytes,
  reason: z.string().nullable(),
  fellBackToFull: z.boolean(),
});
export const PolicyRun = z.strictObject({
  id: z.string().uuid(),
  policyId: z.string(),
  policyName: z.string(),
  trigger: z.enum(['schedule', 'catch-up', 'manual']),
  scheduledAt: iso.nullable(),
  missedRuns: bytes,
  createdAt: iso,
  finishedAt: iso.nullable(),
  windowEnd: iso.nullable(),
  state: z.enum(['resolving', 'running', 'succeeded', 'partial', 'failed', 'skipped']),
  requestedBy: jobUser,
  message: z.string().nullable(),
  vms: z.array(PolicyRunVm),
});
export const PolicyList = z.strictObject({ policies: z.array(Policy.extend({ nextRun: iso.nullable() })) });
export const PolicyDetail = Policy.extend({ nextRuns: z.array(z.strictObject({ at: iso, local: z.string() })), nextVerify: z.strictObject({ at: iso, local: z.string() }).nullable(), runs: z.array(PolicyRun) });
export const PolicySaveResponse = z.strictObject({
  policy: PolicyDetail,
  warnings: z.array(z.strictObject({ code: z.enum(['overlap', 'empty-selection', 'disabled']), message: z.string() })),
});
export const PolicyRunResponse = z.strictObject({ run: PolicyRun });
export const PolicyRunList = z.strictObject({ runs: z.array(PolicyRun) });
agree<Same<z.output<typeof PolicyRunList>, C.PolicyRunList>>();
agree<Same<z.output<typeof PolicyInput>, C.PolicyInput>>();
agree<Same<z.output<typeof Policy>, C.Policy>>();
agree<Same<z.output<typeof PolicyRun>, C.PolicyRun>>();
agree<Same<z.output<typeof PolicyList>, C.PolicyList>>();
agree<Same<z.output<typeof PolicyDetail>, C.PolicyDetail>>();
agree<Same<z.output<typeof PolicySaveResponse>, C.PolicySaveResponse>>();
agree<Same<z.output<typeof PolicyRunResponse>, C.PolicyRunResponse>>();

// ---- verify jobs and the audit log ----
export const StartVerifyResponse = z.strictObject({ job: Job });
export const AuditEntry = z.strictObject({
  time: iso,
  kind: z.enum([...AUDIT_ACTIONS, ...SERVICE_AUDIT_KINDS]),
  source: z.enum(['repository', 'service']),
  actor: z.string(),
  pointId: z.string().nullable(),
  vmKey: z.string().nullable(),
  reason: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export const AuditList = z.strictObject({ entries: z.array(AuditEntry), nextCursor: z.string().nullable() });
agree<Same<z.output<typeof StartVerifyResponse>, C.StartVerifyResponse>>();
export const StartBootCheckResponse = z.strictObject({ job: Job });
export const BootCheckView = z.strictObject({ pointId: z.string(), state: bootState, reason: z.string(), matchedLine: z.string().nullable(), at: iso, durationMs: bytes, accel: z.enum(['kvm', 'tcg']), disks: z.array(z.string()), noNetworkDevice: z.boolean(), screenshot: z.boolean() });
agree<Same<z.output<typeof StartBootCheckResponse>, C.StartBootCheckResponse>>();
agree<Same<z.output<typeof BootCheckView>, C.BootCheckView>>();
agree<Same<z.output<typeof AuditEntry>, C.AuditEntry>>();
agree<Same<z.output<typeof AuditList>, C.AuditList>>();
export * from './schemasFiles';
