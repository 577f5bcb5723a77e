// The backup service's REST client (`/api/v1`): one function per resource and verb, errors as ServiceError.
import type {
  AuditList,
  DeletedVmList,
  DownloadTicket,
  Job,
  JobDetail,
  JobList,
  JobState,
  PointDetail,
  PointList,
  PointSummary,
  PolicyDetail,
  PolicyInput,
  PolicyList,
  PolicyRunList,
  PolicyRunResponse,
  PolicySaveResponse,
  RetentionPreview,
  RetentionPreviewRequest,
  RepositoryStatus,
  RestorePlanView,
  RestoreRequestBody,
  StartBackupRequest,
  StartBackupResponse,
  StartRestoreResponse,
  StartVerifyResponse,
  StartBootCheckResponse,
  BootCheckView,
  FileFindResponse,
  FileListResponse,
  FileSessionView,
  VmList,
  WhoAmI,
} from '../../../backend/src/api/contract';
import { API_PREFIX } from '../constants';
import { dispositionName } from '../logic/fileBrowse';
import { kindOfStatus, ServiceError } from './serviceError';

export interface BackupClientOptions {
  /** http(s)://host:port of the backup service, no trailing slash. */
  serviceUrl: string;
  /** Read on every request: WebAdmin's SSO token (pluginApi.ssoToken()). */
  token: () => string;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

export interface JobQuery {
  vmId?: string;
  state?: JobState;
  limit?: number;
  before?: string;
}

/** `GET /audit`'s filters (backup admins only; others get a `forbidden` ServiceError). */
export interface AuditQuery {
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Comma-separated kinds. */
  action?: string;
  vmId?: string;
  /** ISO 8601: at or after. */
  since?: string;
  /** ISO 8601: before. */
  until?: string;
}

/** The backup service's REST API (`/api/v1`), one function per resource and verb. */
export interface BackupClient {
  readonly serviceUrl: string;
  whoamiGet(): Promise<WhoAmI>;
  vmList(): Promise<VmList>;
  /** VMs the engine no longer has whose points the repository holds (backup admins; others: forbidden). */
  deletedVmList(): Promise<DeletedVmList>;
  vmPointList(vmId: string, q?: { limit?: number; before?: string }): Promise<PointList>;
  /** Every point of a VM, newest first, following `nextBefore` (at most `maxPages` pages). */
  vmPointListAll(vmId: string, maxPages?: number): Promise<PointSummary[]>;
  /** Backup now; `body` empty: a plain backup with the service's default method. */
  vmBackupStart(vmId: string, body?: StartBackupRequest): Promise<StartBackupResponse>;
  jobList(q?: JobQuery): Promise<JobList>;
  jobGet(jobId: string): Promise<JobDetail>;
  jobCancel(jobId: string): Promise<Job>;
  pointGet(pointId: string): Promise<PointDetail>;
  repositoryGet(): Promise<RepositoryStatus>;
  /** What a restore would do, with every problem; nothing is written. */
  restorePlan(pointId: string, body: RestoreRequestBody): Promise<RestorePlanView>;
  /** Starts the restore job (202); a plan with errors is refused (409 RESTORE_REFUSED, details.problems). */
  restoreStart(pointId: string, body: RestoreRequestBody): Promise<StartRestoreResponse>;
  /** A short-lived download link for a disk image of a point; `url` is relative to the service. */
  diskDownloadTicket(pointId: string, device: string, format: 'raw' | 'qcow2'): Promise<DownloadTicket>;
  /** The absolute URL of a ticket's link. */
  downloadUrl(ticket: Pick<DownloadTicket, 'url'>): string;
  /** Backup policies the caller may see, each with its next fire time. */
  policyList(): Promise<PolicyList>;
  /** One policy with its next 5 runs (in its zone) and its recent runs. */
  policyGet(policyId: string): Promise<PolicyDetail>;
  /** 400 naming the field (`request body.schedule: …`) when the definition is refused. */
  policyCreate(body: PolicyInput): Promise<PolicySaveResponse>;
  policyUpdate(policyId: string, body: PolicyInput): Promise<PolicySaveResponse>;
  policyDelete(policyId: string): Promise<void>;
  policyRun(policyId: string): Promise<PolicyRunResponse>;
  /** Recent runs of every policy, newest first. */
  policyRunList(limit?: number): Promise<PolicyRunList>;
  /** What retention rules would keep, remove or leave to a lock if applied now (nothing removed). */
  retentionPreview(body: RetentionPreviewRequest): Promise<RetentionPreview>;
  /** Queues a verify job that re-hashes every chunk of the point (202). */
  pointVerify(pointId: string): Promise<StartVerifyResponse>;
  /** Queues a verify of every point (or joins the pending one). */
  repositoryVerify(): Promise<StartVerifyResponse>;
  /** The audit log, newest first, a page at a time. */
  auditList(q?: AuditQuery): Promise<AuditList>;
  /** Queues a boot check of the point (202): it is started isolated on the backup server. */
  pointBootCheck(pointId: string): Promise<StartBootCheckResponse>;
  /** The point's last boot check (a `not-found` ServiceError when it has none). */
  bootCheckGet(pointId: string): Promise<BootCheckView>;
  /** The screenshot of the point's last boot check (PNG, or PPM when QEMU wrote that). */
  bootCheckScreenshot(pointId: string): Promise<Blob>;
  /** Opens (or finds) the caller's file-browsing session of the point: `opening` until its appliance is up. */
  fileSessionOpen(pointId: string): Promise<FileSessionView>;
  /** The session's state (a `not-found` ServiceError once it is closed or idle-closed). */
  fileSessionGet(pointId: string): Promise<FileSessionView>;
  fileSessionClose(pointId: string): Promise<void>;
  /** A folder of a filesystem of the session, by its path's bytes (base64). */
  fileList(pointId: string, filesystem: string, pathB64: string): Promise<FileListResponse>;
  /** Names matching a glob across the point's filesystems. */
  fileFind(pointId: string, glob: string): Promise<FileFindResponse>;
  /** A file as it is or a folder as .tar.gz, with the name the service gives it (the whole body
   *  in memory: the browser saves it from there). */
  fileDownload(pointId: string, filesystem: string, pathB64: string): Promise<{ blob: Blob; fileName: string | null }>;
}

function errorMessage(body: unknown, fallback: string): { code: string | null; message: string; details: unknown } {
  if (typeof body === 'object' && body !== null) {
    const e = (body as { error?: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const { code, message, details } = e as { code?: unknown; message?: unknown; details?: unknown };
      return { code: typeof code === 'string' ? code : null, message: typeof message === 'string' ? message : fallback, details: details ?? null };
    }
  }
  return { code: null, message: fallback, details: null };
}

export function createBackupClient(opts: BackupClientOptions): BackupClient {
  const base = `${opts.serviceUrl}${API_PREFIX}`;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const doFetch = opts.fetchImpl ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, binary = false): Promise<T> {
    const headers: Record<string, string> = { Accept: binary ? 'image/png, image/x-portable-pixmap' : 'application/json', Authorization: `Bearer ${opts.token()}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), mode: 'cors', credentials: 'omit', signal: ctl.signal });
    } catch (err) {
      // fetch rejects without a status for refused connections, CORS, TLS and our timeout alike
      const why = ctl.signal.aborted ? `no answer within ${Math.round(timeoutMs / 1000)} s` : err instanceof Error ? err.message : String(err);
      throw new ServiceError('unreachable', `${method} ${path}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
    if (binary && res.ok) return (await res.blob()) as T;
    const text = await res.text().catch(() => '');
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!res.ok) {
      const { code, message, details } = errorMessage(parsed, `HTTP ${res.status}`);
      throw new ServiceError(kindOfStatus(res.status), message, res.status, code, details);
    }
    if (res.status === 204) return undefined as T;
    if (parsed === undefined) throw new ServiceError('server', `${method} ${path}: the answer is not JSON`, res.status);
    return parsed as T;
  }

  const enc = encodeURIComponent;
  return {
    serviceUrl: opts.serviceUrl,
    whoamiGet: () => call('GET', '/whoami'),
    vmList: () => call('GET', '/vms'),
    deletedVmList: () => call('GET', '/deleted-vms'),
    vmPointList: (vmId, q = {}) => {
      const p = new URLSearchParams();
      if (q.limit) p.set('limit', String(q.limit));
      if (q.before) p.set('before', q.before);
      const qs = p.toString();
      return call('GET', `/vms/${enc(vmId)}/points${qs ? `?${qs}` : ''}`);
    },
    vmPointListAll: async (vmId, maxPages = 10) => {
      const out: PointSummary[] = [];
      let before: string | undefined;
      for (let i = 0; i < maxPages; i++) {
        const page: PointList = await call('GET', `/vms/${enc(vmId)}/points${before ? `?before=${enc(before)}` : ''}`);
        out.push(...page.points);
        if (!page.nextBefore) break;
        before = page.nextBefore;
      }
      return out;
    },
    vmBackupStart: (vmId, body = {}) => call('POST', `/vms/${enc(vmId)}/backups`, body),
    jobList: (q = {}) => {
      const p = new URLSearchParams();
      if (q.vmId) p.set('vmId', q.vmId);
      if (q.state) p.set('state', q.state);
      if (q.limit) p.set('limit', String(q.limit));
      if (q.before) p.set('before', q.before);
      const qs = p.toString();
      return call('GET', `/jobs${qs ? `?${qs}` : ''}`);
    },
    jobGet: (jobId) => call('GET', `/jobs/${enc(jobId)}`),
    jobCancel: (jobId) => call('POST', `/jobs/${enc(jobId)}/cancel`, {}),
    pointGet: (pointId) => call('GET', `/points/${enc(pointId)}`),
    repositoryGet: () => call('GET', '/repository'),
    restorePlan: (pointId, body) => call('POST', `/points/${enc(pointId)}/restore/plan`, body),
    restoreStart: (pointId, body) => call('POST', `/points/${enc(pointId)}/restore`, body),
    diskDownloadTicket: (pointId, device, format) => call('POST', `/points/${enc(pointId)}/disks/${enc(device)}/download`, { format }),
    policyList: () => call('GET', '/policies'),
    policyGet: (policyId) => call('GET', `/policies/${enc(policyId)}`),
    policyCreate: (body) => call('POST', '/policies', body),
    policyUpdate: (policyId, body) => call('PUT', `/policies/${enc(policyId)}`, body),
    policyDelete: (policyId) => call('DELETE', `/policies/${enc(policyId)}`),
    policyRun: (policyId) => call('POST', `/policies/${enc(policyId)}/run`, {}),
    policyRunList: (limit = 50) => call('GET', `/policy-runs?limit=${limit}`),
    retentionPreview: (body) => call('POST', '/policies/retention-preview', body),
    pointVerify: (pointId) => call('POST', `/points/${enc(pointId)}/verify`, {}),
    repositoryVerify: () => call('POST', '/repository/verify', {}),
    auditList: (q = {}) => {
      const p = new URLSearchParams();
      for (const k of ['limit', 'cursor', 'action', 'vmId', 'since', 'until'] as const) if (q[k] !== undefined) p.set(k, String(q[k]));
      const qs = p.toString();
      return call('GET', `/audit${qs ? `?${qs}` : ''}`);
    },
    pointBootCheck: (pointId) => call('POST', `/points/${enc(pointId)}/bootcheck`, {}),
    bootCheckGet: (pointId) => call('GET', `/points/${enc(pointId)}/bootcheck`),
    bootCheckScreenshot: (pointId) => call('GET', `/points/${enc(pointId)}/bootcheck/screenshot`, undefined, true),
    fileSessionOpen: (pointId) => call('POST', `/points/${enc(pointId)}/files/session`, {}),
    fileSessionGet: (pointId) => call('GET', `/points/${enc(pointId)}/files/session`),
    fileSessionClose: (pointId) => call('DELETE', `/points/${enc(pointId)}/files/session`),
    fileList: (pointId, filesystem, pathB64) => call('GET', `/points/${enc(pointId)}/files/list?${new URLSearchParams({ fs: filesystem, pathB64 }).toString()}`),
    fileFind: (pointId, glob) => call('GET', `/points/${enc(pointId)}/files/find?${new URLSearchParams({ glob }).toString()}`),
    fileDownload: async (pointId, filesystem, pathB64) => {
      const url = `${base}/points/${enc(pointId)}/files/download?${new URLSearchParams({ fs: filesystem, pathB64 }).toString()}`;
      const ctl = new AbortController();
      // a folder's archive streams as long as it takes: an hour at most
      const timer = setTimeout(() => ctl.abort(), 3_600_000);
      try {
        const res = await doFetch(url, { headers: { Authorization: `Bearer ${opts.token()}` }, mode: 'cors', credentials: 'omit', signal: ctl.signal }).catch((err: unknown) => {
          throw new ServiceError('unreachable', `GET files/download: ${err instanceof Error ? err.message : String(err)}`);
        });
        if (!res.ok) {
          const parsed: unknown = await res.json().catch(() => undefined);
          const { code, message, details } = errorMessage(parsed, `HTTP ${res.status}`);
          throw new ServiceError(kindOfStatus(res.status), message, res.status, code, details);
        }
        const blob = await res.blob().catch((err: unknown) => {
          throw new ServiceError('server', `the download was cut off: ${err instanceof Error ? err.message : String(err)}`);
        });
        return { blob, fileName: dispositionName(res.headers.get('Content-Disposition')) };
      } finally {
        clearTimeout(timer);
      }
    },
    downloadUrl: (ticket) => `${opts.serviceUrl}${ticket.url.startsWith('/') ? '' : '/'}${ticket.url}`,
  };
}
