import { z } from 'zod';
import { AppError } from '../errors';
import { isPointId } from '../repository';
import { JOB_STATES, type JobState } from '../jobs';
import type { RestoreRequestBody } from '../restore';
import type { AuditQuery } from '../catalog';
import type { BackupMethod, ConsistencyMode } from '../backup';
import { AuditEntry, DownloadRequest, RestoreRequestBody as RestoreBodySchema, StartBackupRequest } from './schemas';
import { PolicyInput as PolicyInputSchema, RetentionPreviewRequest as RetentionPreviewSchema } from './schemas';

/** Engine ids are UUIDs; anything else (a path, `..`, a name) is refused before any lookup. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function vmIdParam(v: unknown): string {
  if (typeof v !== 'string' || !UUID.test(v)) throw new AppError('BAD_REQUEST', `vm id ${show(v)} is not an engine id (a UUID)`);
  return v.toLowerCase();
}

export function jobIdParam(v: unknown): string {
  if (typeof v !== 'string' || !UUID.test(v)) throw new AppError('BAD_REQUEST', `job id ${show(v)} is not a job id (a UUID)`);
  return v.toLowerCase();
}

export function pointIdParam(v: unknown): string {
  if (typeof v !== 'string' || !isPointId(v)) throw new AppError('BAD_REQUEST', `point id ${show(v)} is not a restore point id`);
  return v;
}

const jobsQuery = z
  .object({
    vmId: z.string().regex(UUID, 'must be a vm id (a UUID)').optional(),
    state: z
      .string()
      .transform((s) => s.split(','))
      .pipe(z.array(z.enum(JOB_STATES)))
      .optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
    before: z.string().min(1).max(200).optional(),
  })
  .strict();

const pointsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    before: z.string().min(1).max(200).optional(),
  })
  .strict();

const isoTime = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date-time')
  .transform((s) => new Date(s).toISOString());

const auditQuery = z
  .object({
    since: isoTime.optional(),
    until: isoTime.optional(),
    action: z
      .string()
      .transform((s) => s.split(','))
      .pipe(z.array(AuditEntry.shape.kind))
      .optional(),
    // an engine VM's key is its id; other keys (a libvirt VM's) are taken as they are
    vmId: z
      .string()
      .min(1)
      .max(200)
      .transform((s) => (UUID.test(s) ? s.toLowerCase() : s))
      .optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z.string().min(1).max(200).optional(),
  })
  .strict();

/** Backup now's body: `method` absent is the service's default (left to the job); `consistency`
 *  absent is auto. */
export function parseStartBackup(body: unknown): { full: boolean; method?: BackupMethod; consistency: ConsistencyMode } {
  // no body, or an empty one, is a plain backup
  if (body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0)) return { full: false, consistency: 'auto' };
  const v = parse(StartBackupRequest, body, 'request body');
  return { full: v.full ?? false, ...(v.method ? { method: v.method } : {}), consistency: v.consistency ?? 'auto' };
}

export function parseRestoreBody(body: unknown): RestoreRequestBody {
  return parse(RestoreBodySchema, body, 'request body');
}

export function parseDownloadBody(body: unknown): { format: 'raw' | 'qcow2' } {
  if (body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0)) return { format: 'raw' };
  return { format: parse(DownloadRequest, body, 'request body').format ?? 'raw' };
}

/** A disk's name inside a point is a QEMU device id: letters, digits, `-`, `_`, `.`. */
export function deviceParam(v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9][\w.-]{0,199}$/.test(v)) throw new AppError('BAD_REQUEST', `disk ${show(v)} is not a disk name of a restore point`);
  return v;
}

export function parseJobsQuery(q: unknown): { vmId?: string; states?: JobState[]; limit: number; before?: string } {
  const v = parse(jobsQuery, q, 'query');
  return { ...(v.vmId ? { vmId: v.vmId.toLowerCase() } : {}), ...(v.state ? { states: v.state } : {}), limit: v.limit ?? 100, ...(v.before ? { before: v.before } : {}) };
}

export function parsePointsQuery(q: unknown): { limit: number; before?: string } {
  const v = parse(pointsQuery, q, 'query');
  return { limit: v.limit ?? 200, ...(v.before ? { before: v.before } : {}) };
}

export function parseAuditQuery(q: unknown): AuditQuery {
  const v = parse(auditQuery, q, 'query');
  return {
    ...(v.since ? { since: v.since } : {}),
    ...(v.until ? { until: v.until } : {}),
    ...(v.action ? { actions: v.action } : {}),
    ...(v.vmId ? { vmKey: v.vmId } : {}),
    ...(v.cursor ? { cursor: v.cursor } : {}),
    limit: v.limit ?? 200,
  };
}

/** zod's first issue as one sentence naming the field: `query.limit: must be ≤ 500`. */
function parse<T extends z.ZodTypeAny>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const unknownKeys = issue && 'keys' in issue && Array.isArray(issue.keys) ? (issue.keys) : [];
  const field = [where, ...(issue?.path ?? []).map(String)].join('.');
  const message = unknownKeys.length > 0 ? `${where}: unknown field ${unknownKeys.map((k) => `"${k}"`).join(', ')}` : `${field}: ${issue?.message ?? 'invalid'}`;
  throw new AppError('BAD_REQUEST', message);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function parsePolicyInput(body: unknown): z.output<typeof PolicyInputSchema> {
  return parse(PolicyInputSchema, body, 'request body');
}

export function parseRetentionPreview(body: unknown): z.output<typeof RetentionPreviewSchema> {
  return parse(RetentionPreviewSchema, body, 'request body');
}
