import { pipeline, type Readable } from 'stream';
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors';
import type { FileSessionSnapshot } from '../../jobs';
import { displayName, parseDisplayName, type BrowseEntry, type BrowsePath, type FoundEntry } from '../../restore';
import type { FileEntry, FileFindResponse, FileListResponse, FileSessionView, FoundFile } from '../contract';
import { requirePointDownload } from '../access';
import type { ApiDeps } from '../deps';
import { principalOf, route } from '../middleware';
import { FileSessionRequest } from '../schemasFiles';
import { pointIdParam } from '../validate';
import { visiblePointOr404 } from '../visibility';

/**
 * File-level restore (Browse files…): the caller's browsing session of a point — opened with
 * POST (202 `opening`, the appliance takes ~20 s under TCG: poll GET until `ready`, or ask the
 * POST to wait with `waitSeconds`), listed, searched, downloaded from (a file as it is, a
 * folder as .tar.gz, streamed), closed with DELETE. Each route needs what a download of the
 * point's disks needs (access.ts requirePointDownload, as a boot check); a VM the caller may
 * not see is 404. Paths are bytes: `pathB64` is exact, `path` the escaped display form
 * (`\n`, `\xHH`, `\\`) the listings give. Each action is audited by the session manager.
 */
export function filesRoutes(deps: ApiDeps): Router {
  const r = Router();
  const base = '/points/:pointId/files';

  r.post(
    `${base}/session`,
    route(async (req, res) => {
      const body = parseBody(req.body);
      // the permits of the disks the new session would read: the one asked for, else every disk
      const { pointId, point } = await mayBrowse(deps, req, res, 'browse the files of', { disk: body.disk });
      if (body.disk !== undefined && !point.disks.some((d) => d.device === body.disk)) {
        throw new AppError('BAD_REQUEST', `request body: disk must be one of the point's disks (${point.disks.map((d) => d.device).join(', ')})`);
      }
      const user = principalOf(res);
      const admin = await deps.permits.isBackupAdmin(user);
      const holder = { userId: user.userId, userName: user.userName };
      // the limit's refusal names the holders the caller may know of: their own sessions, all for a backup admin
      const { snapshot, created } = deps.files.open(holder, { pointId, vmId: point.vmId }, body.disk ?? null, (s) => admin || s.holder.userId === user.userId);
      let snap = snapshot;
      if (snap.state === 'opening' && body.waitSeconds) snap = (await deps.files.settled(user.userId, pointId, body.waitSeconds * 1000)) ?? snap;
      res.status(snap.state === 'opening' || (created && snap.state !== 'ready') ? 202 : 200).json(view(deps, snap));
    }),
  );

  r.get(
    `${base}/session`,
    route(async (req, res) => {
      const { pointId } = await mayBrowse(deps, req, res, 'browse the files of');
      const snap = deps.files.get(principalOf(res).userId, pointId);
      if (!snap) throw new AppError('NOT_FOUND', `no file-browsing session is open on restore point ${pointId}`);
      res.json(view(deps, snap));
    }),
  );

  r.delete(
    `${base}/session`,
    route(async (req, res) => {
      const { pointId } = await mayBrowse(deps, req, res, 'browse the files of');
      const user = principalOf(res);
      if (!(await deps.files.close({ userId: user.userId, userName: user.userName }, pointId))) throw new AppError('NOT_FOUND', `no file-browsing session is open on restore point ${pointId}`);
      res.status(204).end();
    }),
  );

  r.get(
    `${base}/list`,
    route(async (req, res) => {
      const { pointId, holder } = await mayBrowse(deps, req, res, 'browse the files of');
      const at = pathQuery(req);
      const shown = displayName(at.path.length ? at.path : Buffer.from('/'));
      const listed = await deps.files.use(holder, pointId, 'list', { filesystem: at.filesystem, path: shown }, (s) => s.list(at));
      const body: FileListResponse = { filesystem: at.filesystem, path: shown, pathB64: at.path.toString('base64'), entries: listed.entries.map(entryView), truncated: listed.truncated };
      res.json(body);
    }),
  );

  r.get(
    `${base}/find`,
    route(async (req, res) => {
      const { pointId, holder } = await mayBrowse(deps, req, res, 'search the files of');
      const glob = stringQuery(req, 'glob', true);
      if (glob.length > 1000) throw new AppError('BAD_REQUEST', 'glob: at most 1000 characters');
      const fs = stringQuery(req, 'fs', false) || undefined;
      const limitText = stringQuery(req, 'limit', false);
      const limit = limitText ? Number(limitText) : undefined;
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new AppError('BAD_REQUEST', 'limit: a whole number from 1 to 1000');
      const caseInsensitive = stringQuery(req, 'ci', false) === 'true';
      const found = await deps.files.use(holder, pointId, 'find', { glob, ...(fs ? { filesystem: fs } : {}) }, (s) =>
        s.find(glob, { ...(fs ? { filesystem: fs } : {}), ...(limit ? { limit } : {}), caseInsensitive }),
      );
      const body: FileFindResponse = { glob, results: found.results.map(foundView), truncated: found.truncated };
      res.json(body);
    }),
  );

  r.get(
    `${base}/download`,
    route(async (req, res) => {
      const { pointId, holder } = await mayBrowse(deps, req, res, 'download files of');
      const at = pathQuery(req);
      // the response's 'close' before it finished: the client went away (the request's own
      // 'close' only says its body was read)
      let left = false;
      res.once('close', () => (left = !res.writableFinished));
      const clientGone = (): boolean => left || res.destroyed || (res.socket?.destroyed ?? false);
      const shown = displayName(at.path.length ? at.path : Buffer.from('/'));
      let kind = 'file' as 'file' | 'archive';
      let size = null as number | null;
      const stream = await deps.files.stream(holder, pointId, { filesystem: at.filesystem, path: shown }, async (s) => {
        const st = await s.stat(at);
        if (st.type !== 'directory') {
          try {
            const got = await s.read(at);
            size = got.stat.size;
            return got.stream;
          } catch (err) {
            // a symlink to a folder inside the filesystem is archived like the folder
            if (!(st.type === 'symlink' && err instanceof AppError && err.code === 'INVALID_ARGUMENT')) throw err;
          }
        }
        kind = 'archive';
        return s.archive(at);
      });
      // the first bytes (a whole small file) are read before answering, so a file the point
      // cannot give (damaged chunks) is a clear error rather than a cut connection
      let head: { chunks: Buffer[]; ended: boolean };
      try {
        head = await firstBytes(stream, HEAD_BYTES);
      } catch (err) {
        stream.destroy();
        throw err;
      }
      // a client that left meanwhile: its 'close' has fired already, nothing would drain the
      // stream (streamOut drains the fifo once the stream is destroyed, the session goes on)
      if (clientGone()) {
        stream.destroy();
        return;
      }
      const name = downloadName(at, kind);
      res.status(200);
      res.setHeader('Content-Type', kind === 'archive' ? 'application/gzip' : 'application/octet-stream');
      res.setHeader('Content-Disposition', `attachment; filename="${name.ascii}"; filename*=UTF-8''${name.encoded}`);
      if (size !== null) res.setHeader('Content-Length', String(size));
      res.setHeader('X-File-Kind', kind);
      for (const c of head.chunks) res.write(c);
      if (head.ended) {
        stream.destroy();
        res.end();
        return;
      }
      // a failure half-way must not look like a complete file: pipeline cuts the connection;
      // a client that goes away destroys the stream
      pipeline(stream, res, (err) => {
        if (err && !clientGone()) deps.log.warn({ pointId, path: shown, err: err.message }, 'a file download failed half-way');
      });
    }),
  );
  return r;
}

/** Bytes read before a download answers: a file up to this size fails with a clear error. */
const HEAD_BYTES = 8 * 1024 * 1024;

/** The stream's first `limit` bytes (or all of it, `ended`), the stream paused after them; its error rejects. */
function firstBytes(stream: Readable, limit: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (ended: boolean): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      // until the route's own handler is attached: an error with no listener would throw
      stream.on('error', () => undefined);
      stream.pause();
      resolve({ chunks, ended });
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      total += c.length;
      if (total >= limit) done(false);
    };
    const onEnd = (): void => done(true);
    const onError = (err: Error): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      reject(err);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

/**
 * The point, when the caller may see it (else 404) and may read the disks concerned (else 403
 * naming the permit): for `opening` a session the disk asked for (every disk when none), for
 * the other routes the disks of the caller's session.
 */
async function mayBrowse(deps: ApiDeps, req: Request, res: Response, action: string, opening?: { disk: string | undefined }) {
  const pointId = pointIdParam(req.params['pointId']);
  const point = await visiblePointOr404(deps, res, pointId);
  const user = principalOf(res);
  // opening: the disk asked for (all when none); else the disks of the caller's session
  const open = opening ? undefined : deps.files.get(user.userId, pointId);
  const devices = opening ? (opening.disk !== undefined ? [opening.disk] : undefined) : open?.disk ? [open.disk] : undefined;
  await requirePointDownload(deps, res, point, action, devices);
  return { pointId, point, holder: { userId: user.userId, userName: user.userName } };
}

function parseBody(body: unknown): { disk?: string; waitSeconds?: number } {
  if (body === undefined || body === null || (typeof body === 'object' && Object.keys(body).length === 0)) return {};
  const r = FileSessionRequest.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new AppError('BAD_REQUEST', `request body: ${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'} (a session takes "disk" and "waitSeconds" 0–120)`);
  }
  return r.data;
}

function stringQuery(req: Request, name: string, required: boolean): string {
  const v = req.query[name];
  if (v === undefined || v === '') {
    if (required) throw new AppError('BAD_REQUEST', `query: ${name} is required`);
    return '';
  }
  if (typeof v !== 'string') throw new AppError('BAD_REQUEST', `query: ${name} must be given once`);
  return v;
}

/** `fs=` and `pathB64=` (exact bytes) or `path=` (the escaped display form; default `/`). */
function pathQuery(req: Request): BrowsePath {
  const filesystem = stringQuery(req, 'fs', true);
  const b64 = stringQuery(req, 'pathB64', false);
  if (b64) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new AppError('BAD_REQUEST', 'query: pathB64 must be base64');
    return { filesystem, path: Buffer.from(b64, 'base64') };
  }
  const shown = stringQuery(req, 'path', false) || '/';
  return { filesystem, path: parseDisplayName(shown) };
}

function entryView(e: BrowseEntry): FileEntry {
  return { name: e.name, nameB64: e.nameB64, type: e.type, mode: e.mode, size: e.size, modifiedAt: new Date(e.mtimeMs).toISOString(), uid: e.uid, gid: e.gid, target: e.target };
}

function foundView(f: FoundEntry): FoundFile {
  return { filesystem: f.filesystem, path: f.path, pathB64: f.pathB64, type: f.type, mode: f.mode, size: f.size, modifiedAt: new Date(f.mtimeMs).toISOString() };
}

function view(deps: ApiDeps, s: FileSessionSnapshot): FileSessionView {
  const layout = s.layout;
  return {
    sessionId: s.sessionId,
    pointId: s.pointId,
    state: s.state,
    disks: layout?.disks.map((d) => ({ device: d.device, applianceDevice: d.applianceDevice, size: d.size })) ?? [],
    filesystems: layout?.filesystems.map((f) => ({ name: f.device, type: f.type, label: f.label, size: f.size, mounted: f.mounted, error: f.error })) ?? [],
    error: s.error,
    openedAt: s.openedAt,
    lastUsedAt: s.lastUsedAt,
    idleSeconds: deps.fileIdleSeconds,
  };
}

/** The download's file name: the last path component (the filesystem's name for its root), `.tar.gz` for a folder. */
function downloadName(at: BrowsePath, kind: 'file' | 'archive'): { ascii: string; encoded: string } {
  let end = at.path.length;
  while (end > 0 && at.path[end - 1] === 0x2f) end--;
  const start = at.path.lastIndexOf(0x2f, end - 1) + 1;
  const component = at.path.subarray(start, end);
  const last = component.length && !(component.length === 1 && component[0] === 0x2e) ? component : Buffer.from(at.filesystem.replace(/^\/dev\//, '').replace(/\//g, '-'));
  const name = kind === 'archive' ? Buffer.concat([last, Buffer.from('.tar.gz')]) : last;
  const ascii = [...name].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : '_')).join('');
  const encoded = [...name].map((c) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return { ascii, encoded };
}
