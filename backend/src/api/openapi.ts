import { z } from 'zod';
import * as S from './schemas';

/** One operation per route of app.ts; `tests` compare this list with the router's. */
export const OPERATIONS: Array<{ method: 'get' | 'post' | 'put' | 'delete'; path: string; summary: string; auth: boolean; body?: keyof typeof S; ok: { status: number; schema: keyof typeof S | 'text' | 'binary' | 'image' | 'empty' }[]; errors?: Record<string, string> }> = [
  { method: 'get', path: '/api/v1/health', summary: 'Up or down (HealthStatus); with the scrape token or a portal user\'s token, the version and each check (catalog, repository, engine) (Health)', auth: false, ok: [{ status: 200, schema: 'HealthStatus' }, { status: 503, schema: 'HealthStatus' }, { status: 200, schema: 'Health' }, { status: 503, schema: 'Health' }] },
  { method: 'get', path: '/api/v1/openapi.json', summary: 'This description', auth: false, ok: [{ status: 200, schema: 'text' }] },
  { method: 'get', path: '/api/v1/whoami', summary: 'The engine user the token belongs to', auth: true, ok: [{ status: 200, schema: 'WhoAmI' }] },
  { method: 'get', path: '/api/v1/vms', summary: 'VMs the caller may see, with their backup state and what the caller may do to their backups (engine permits)', auth: true, ok: [{ status: 200, schema: 'VmList' }] },
  { method: 'get', path: '/api/v1/deleted-vms', summary: 'VMs the engine no longer has whose points the repository holds (backup admins only)', auth: true, ok: [{ status: 200, schema: 'DeletedVmList' }], errors: { '403': 'The caller is no backup admin (FORBIDDEN)' } },
  { method: 'get', path: '/api/v1/vms/{vmId}/points', summary: "A VM's restore points, newest first", auth: true, ok: [{ status: 200, schema: 'PointList' }] },
  { method: 'post', path: '/api/v1/vms/{vmId}/backups', summary: 'Start a backup of a VM (or join the pending one)', auth: true, body: 'StartBackupRequest', ok: [{ status: 202, schema: 'StartBackupResponse' }, { status: 200, schema: 'StartBackupResponse' }] },
  { method: 'get', path: '/api/v1/jobs', summary: 'Jobs of VMs the caller may see, newest first', auth: true, ok: [{ status: 200, schema: 'JobList' }] },
  { method: 'get', path: '/api/v1/jobs/{jobId}', summary: 'One job with its log', auth: true, ok: [{ status: 200, schema: 'JobDetail' }] },
  { method: 'post', path: '/api/v1/jobs/{jobId}/cancel', summary: 'Cancel a queued or running job', auth: true, ok: [{ status: 200, schema: 'Job' }] },
  { method: 'get', path: '/api/v1/points/{pointId}', summary: 'One restore point: disks, sizes, VM definition summary', auth: true, ok: [{ status: 200, schema: 'PointDetail' }] },
  { method: 'post', path: '/api/v1/points/{pointId}/restore/plan', summary: 'What a restore of the point would do, and every problem found (nothing is written)', auth: true, body: 'RestoreRequestBody', ok: [{ status: 200, schema: 'RestorePlanView' }] },
  { method: 'post', path: '/api/v1/points/{pointId}/restore', summary: 'Start a restore job (409 with the problems when the plan has errors)', auth: true, body: 'RestoreRequestBody', ok: [{ status: 202, schema: 'StartRestoreResponse' }] },
  { method: 'post', path: '/api/v1/points/{pointId}/disks/{device}/download', summary: 'A short-lived link to download one disk image (raw or qcow2)', auth: true, body: 'DownloadRequest', ok: [{ status: 201, schema: 'DownloadTicket' }] },
  { method: 'get', path: '/api/v1/downloads/{ticket}', summary: 'The disk image of a download link (Range supported); the link is the credential', auth: false, ok: [{ status: 200, schema: 'binary' }, { status: 206, schema: 'binary' }] },
  { method: 'get', path: '/api/v1/policies', summary: 'Backup policies whose VMs the caller may all see, with their next run', auth: true, ok: [{ status: 200, schema: 'PolicyList' }] },
  { method: 'post', path: '/api/v1/policies', summary: 'Create a policy (cron, time zone and tag checked; overlaps with other policies reported as warnings)', auth: true, body: 'PolicyInput', ok: [{ status: 201, schema: 'PolicySaveResponse' }] },
  { method: 'get', path: '/api/v1/policy-runs', summary: 'Recent policy runs (scheduled, catch-up, manual) with the outcome of each VM, newest first; runs of VMs the caller may all see', auth: true, ok: [{ status: 200, schema: 'PolicyRunList' }] },
  { method: 'get', path: '/api/v1/policies/{policyId}', summary: 'One policy with its next 5 runs (in its time zone) and its recent runs', auth: true, ok: [{ status: 200, schema: 'PolicyDetail' }] },
  { method: 'put', path: '/api/v1/policies/{policyId}', summary: 'Replace a policy (fire times before the change are not owed)', auth: true, body: 'PolicyInput', ok: [{ status: 200, schema: 'PolicySaveResponse' }] },
  { method: 'delete', path: '/api/v1/policies/{policyId}', summary: 'Delete a policy (a run in progress finishes; its history stays)', auth: true, ok: [{ status: 204, schema: 'empty' }] },
  { method: 'post', path: '/api/v1/policies/retention-preview', summary: 'What retention rules would keep, remove, or leave to a retention lock if applied now to the VMs a selection means (nothing is removed)', auth: true, body: 'RetentionPreviewRequest', ok: [{ status: 200, schema: 'RetentionPreview' }] },
  { method: 'post', path: '/api/v1/policies/{policyId}/run', summary: 'Run a policy now, outside its schedule and window (409 while a run of it is in progress)', auth: true, ok: [{ status: 202, schema: 'PolicyRunResponse' }] },
  { method: 'get', path: '/api/v1/repository', summary: 'Repository usage, dedup and compression', auth: true, ok: [{ status: 200, schema: 'RepositoryStatus' }] },
  { method: 'post', path: '/api/v1/points/{pointId}/verify', summary: "Start a verify job: re-hash every chunk of the point; damage marks the point (the next backup heals it), nothing else changes", auth: true, ok: [{ status: 202, schema: 'StartVerifyResponse' }] },
  { method: 'post', path: '/api/v1/repository/verify', summary: 'Start a verify job of every point in the repository (backup admins; its result shows each caller only the points of VMs they may see); joins a pending one (200)', auth: true, ok: [{ status: 202, schema: 'StartVerifyResponse' }, { status: 200, schema: 'StartVerifyResponse' }] },
  { method: 'post', path: '/api/v1/points/{pointId}/bootcheck', summary: 'Start a boot check job: the point started in an isolated VM on the backup server (no network, a throw-away overlay), one at a time; the verdict is stored on the point. Body {} or {"disk": device} (default the first disk). Needs what a download of each of its disks needs', auth: true, ok: [{ status: 202, schema: 'StartBootCheckResponse' }], errors: { '403': 'The caller may not download the point\'s disks (FORBIDDEN, naming the missing permit)' } },
  { method: 'get', path: '/api/v1/points/{pointId}/bootcheck', summary: "The point's last boot check: ok, failed or timeout, why, the matched console line, when, how long, KVM or TCG (404 when never checked)", auth: true, ok: [{ status: 200, schema: 'BootCheckView' }], errors: { '403': 'The caller may not download the point\'s disks (FORBIDDEN)' } },
  { method: 'get', path: '/api/v1/points/{pointId}/bootcheck/screenshot', summary: "The screen of the point's last boot check (image/png, or image/x-portable-pixmap when QEMU wrote PPM); 404 when none was kept (an encrypted repository keeps none)", auth: true, ok: [{ status: 200, schema: 'image' }], errors: { '403': 'The caller may not download the point\'s disks (FORBIDDEN)' } },
  { method: 'post', path: '/api/v1/points/{pointId}/files/session', summary: "Open the caller's file-browsing session of the point (one per user per point; a libguestfs appliance over the point, read-only): 202 `opening` (~20 s under TCG; poll GET …/files/session, or send waitSeconds to wait up to that long), 200 when it is ready already. Body {} or {\"disk\": device, \"waitSeconds\": 0-120}. 429 when fileRestore.maxSessions sessions are open (naming the holders the caller may know of). Needs what a download of the point's disks needs", auth: true, body: 'FileSessionRequest', ok: [{ status: 202, schema: 'FileSessionView' }, { status: 200, schema: 'FileSessionView' }], errors: { '403': "The caller may not download the point's disks (FORBIDDEN, naming the missing permit)", '429': 'Every file-browsing session the service allows is in use (TOO_MANY_REQUESTS)' } },
  { method: 'get', path: '/api/v1/points/{pointId}/files/session', summary: "The caller's file-browsing session of the point: opening, ready (its filesystems) or failed (why); 404 when none is open (closed, or idle for fileRestore.idleSeconds)", auth: true, ok: [{ status: 200, schema: 'FileSessionView' }], errors: { '403': "The caller may not download the point's disks (FORBIDDEN)" } },
  { method: 'delete', path: '/api/v1/points/{pointId}/files/session', summary: "Close the caller's file-browsing session of the point (its appliance stops)", auth: true, ok: [{ status: 204, schema: 'empty' }], errors: { '403': "The caller may not download the point's disks (FORBIDDEN)" } },
  { method: 'get', path: '/api/v1/points/{pointId}/files/list', summary: 'A folder of a filesystem of the point: names (exact bytes in nameB64, escaped in name), type, mode, size, time, symlink targets; at most 10,000 (truncated)', auth: true, ok: [{ status: 200, schema: 'FileListResponse' }], errors: { '400': "A path the browser refuses: '..', a symlink out of its filesystem, not a folder (FILE_REFUSED, INVALID_ARGUMENT)", '403': "The caller may not download the point's disks (FORBIDDEN)", '422': "The point's data there cannot be read: damaged chunks or a corrupt filesystem (FILE_UNREADABLE); the session stays usable" } },
  { method: 'get', path: '/api/v1/points/{pointId}/files/find', summary: 'Names matching a glob in every mounted filesystem of the point (or fs=): `*`, `?`, `[…]`, `**` across folders; without a `/` it matches a name anywhere', auth: true, ok: [{ status: 200, schema: 'FileFindResponse' }], errors: { '403': "The caller may not download the point's disks (FORBIDDEN)" } },
  { method: 'get', path: '/api/v1/points/{pointId}/files/download', summary: 'A file of the point as it is (application/octet-stream, Content-Length), or a folder as .tar.gz (application/gzip), streamed; X-File-Kind says which. A failure half-way cuts the connection (never a short file that looks whole)', auth: true, ok: [{ status: 200, schema: 'binary' }], errors: { '400': "A path the browser refuses: '..', a symlink out of its filesystem, a device, fifo or socket (FILE_REFUSED)", '403': "The caller may not download the point's disks (FORBIDDEN)", '422': "The point's data there cannot be read (FILE_UNREADABLE); the session stays usable" } },
  { method: 'get', path: '/api/v1/audit', summary: 'The audit log, newest first: deletions, prunes, lock changes and unlocks (also those made with the CLI), damage marks, gc, restores, policy changes and runs by hand, refused logins and refused actions (backup admins only)', auth: true, ok: [{ status: 200, schema: 'AuditList' }], errors: { '403': 'The caller is no backup admin (FORBIDDEN)' } },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics (text exposition format); Authorization: Bearer <scrape token>, or a backup admin\'s SSO token', auth: false, ok: [{ status: 200, schema: 'text' }] },
];

const PARAMS: Record<string, string> = {
  vmId: 'Engine VM id (UUID)',
  jobId: 'Job id (UUID)',
  pointId: 'Restore point id',
  device: "A disk's name inside the point (its QEMU device id)",
  ticket: 'Download ticket',
};

PARAMS['policyId'] = 'Policy id (UUID)';

const QUERY: Record<string, Array<{ name: string; description: string; schema: Record<string, unknown> }>> = {
  '/api/v1/audit': [
    { name: 'since', description: 'ISO 8601: only entries at or after it', schema: { type: 'string', format: 'date-time' } },
    { name: 'until', description: 'ISO 8601: only entries before it', schema: { type: 'string', format: 'date-time' } },
    { name: 'action', description: 'Comma-separated kinds (delete, unlock, restore, policy-update, auth-failure, …)', schema: { type: 'string' } },
    { name: 'vmId', description: 'Only entries about this VM (its key, or among the VMs a policy entry names)', schema: { type: 'string' } },
    { name: 'limit', description: '1–1000, default 200', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
    { name: 'cursor', description: 'Cursor: nextCursor of the previous page', schema: { type: 'string' } },
  ],
  '/api/v1/policy-runs': [{ name: 'limit', description: '1–200, default 50', schema: { type: 'integer', minimum: 1, maximum: 200 } }],
  '/api/v1/jobs': [
    { name: 'vmId', description: 'Only jobs of this VM', schema: { type: 'string' } },
    { name: 'state', description: 'Comma-separated job states', schema: { type: 'string' } },
    { name: 'limit', description: '1–500, default 100', schema: { type: 'integer', minimum: 1, maximum: 500 } },
    { name: 'before', description: 'Cursor: nextBefore of the previous page', schema: { type: 'string' } },
  ],
  '/api/v1/vms/{vmId}/points': [
    { name: 'limit', description: '1–1000, default 200', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
    { name: 'before', description: 'Cursor: nextBefore of the previous page', schema: { type: 'string' } },
  ],
};

const PATH_QUERY = [
  { name: 'fs', description: "A filesystem of the session (its name: /dev/sda1…)", schema: { type: 'string' } },
  { name: 'pathB64', description: 'The path inside it as base64 bytes (exact, for any name)', schema: { type: 'string' } },
  { name: 'path', description: 'Or the path in the escaped display form of the listings (\\n, \\xHH, \\\\); default /', schema: { type: 'string' } },
];
QUERY['/api/v1/points/{pointId}/files/list'] = PATH_QUERY;
QUERY['/api/v1/points/{pointId}/files/download'] = PATH_QUERY;
QUERY['/api/v1/points/{pointId}/files/find'] = [
  { name: 'glob', description: 'The pattern (required; escaped display form for bytes that are not UTF-8)', schema: { type: 'string' } },
  { name: 'fs', description: 'Only this filesystem', schema: { type: 'string' } },
  { name: 'limit', description: '1–1000, default 200', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  { name: 'ci', description: 'true: case-insensitive', schema: { type: 'boolean' } },
];

const ERRORS: Record<string, string> = {
  '400': 'Malformed request (bad id, unknown field, invalid JSON)',
  '401': 'Missing, malformed, expired or refused engine SSO token',
  '404': 'No such object, or the caller may not see it',
  '409': 'Conflicts with a job in progress, or with a restore point\'s retention lock (REPO_POINT_LOCKED)',
  '413': 'Request body too large',
};

/** OpenAPI 3.1 description of the service, built from the zod schemas the tests check. */
export function openApiDocument(version: string): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(S)) {
    const json = z.toJSONSchema(schema as z.ZodType, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
    delete json['$schema']; // one per document, not per component
    schemas[name] = json;
  }
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, description: PARAMS[m[1] ?? ''] ?? '', schema: { type: 'string' } }));
    const query = (op.method === 'get' ? QUERY[op.path] : undefined)?.map((q) => ({ ...q, in: 'query', required: false })) ?? [];
    const responses: Record<string, unknown> = {};
    for (const r of op.ok) {
      if (r.schema === 'empty') {
        responses[String(r.status)] = { description: 'No content' };
        continue;
      }
      responses[String(r.status)] =
        r.schema === 'image'
          ? { description: 'OK', content: { 'image/png': { schema: { type: 'string', format: 'binary' } }, 'image/x-portable-pixmap': { schema: { type: 'string', format: 'binary' } } } }
          : r.schema === 'binary'
          ? { description: r.status === 206 ? 'Partial content' : 'OK', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }
          : r.schema === 'text'
          ? { description: 'OK', content: { [op.path === '/metrics' ? 'text/plain' : 'application/json']: { schema: { type: op.path === '/metrics' ? 'string' : 'object' } } } }
          : { description: r.status === 202 ? 'Accepted' : 'OK', content: { 'application/json': { schema: { $ref: `#/components/schemas/${r.schema}` } } } };
    }
    for (const [status, description] of Object.entries({ ...ERRORS, ...op.errors })) {
      if (!op.auth && status === '401') continue;
      if (op.path.startsWith('/api/v1/') && op.auth) responses[status] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiError' } } } };
    }
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      operationId: `${op.method}${op.path.replace(/^\/api\/v1/, '').replace(/[{}]/g, '').split(/[/._-]/).map((s) => s.charAt(0).toUpperCase() + s.slice(1)).join('')}`,
      ...(op.auth ? { security: [{ engineSso: [] }] } : { security: [] }),
      parameters: [...params, ...query],
      ...(op.body ? { requestBody: { required: false, content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body}` } } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'olvm-backup service',
      version,
      description:
        'Backups of oVirt/OLVM VMs. Every /api/v1 route but health and this description needs `Authorization: Bearer <engine SSO token>` ' +
        '(the WebAdmin plugin sends pluginApi.ssoToken()). Live job events: WebSocket /api/v1/events, first message {"type":"auth","token":…}.',
    },
    servers: [{ url: '/' }],
    components: { securitySchemes: { engineSso: { type: 'http', scheme: 'bearer', description: 'oVirt engine SSO access token' } }, schemas },
    paths,
  };
}
