import type { IncomingMessage } from 'http';
import type { Duplex } from 'stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { describeError, isAppError } from '../errors';
import type { JobQueue } from '../jobs';
import { tokenKeyOf, type Authenticator, type Principal } from './auth';
import type { ServiceAuditLog } from '../catalog';
import { REPOSITORY_JOB_VM_ID, type Job, type JobProgress } from '../jobs';
import { WS_CLOSE, type ClientMessage, type ServerMessage } from './contract';
import type { ApiCatalog } from './deps';
import { isRepositoryJob, repositoryJobFor } from './jobViews';

export const EVENTS_PATH = '/api/v1/events';

export interface EventHubOptions {
  auth: Authenticator;
  queue: JobQueue;
  catalog: ApiCatalog;
  corsOrigins: readonly string[];
  log: Logger;
  heartbeatMs?: number;
  authTimeoutMs?: number;
  /** Refused tokens go to the audit log (by their hash). */
  audit?: Pick<ServiceAuditLog, 'authFailure'>;
  /** Whether the VM is gone from the engine and the principal a backup admin: the events of its
   *  jobs (the restore bringing it back) are theirs too. */
  deleted?: { seenBy(principal: Principal, vmId: string): Promise<boolean> };
}

interface Client {
  ws: WebSocket;
  principal: Principal;
  /** Kept in memory only, to notice a logout while the socket stays open. */
  token: string;
  visible: Set<string>;
  /** VMs the last refresh took away: their events are dropped without asking the engine (whose
   *  per-VM answer may still be cached from before) until a refresh shows them again. */
  lost: Set<string>;
  /** Deleted VMs this backup admin follows. Kept until a refresh shows the VM (a restore brought
   *  it back: its last events must not fall between "deleted" and "visible") or finds it is no
   *  longer theirs to follow. */
  deleted: Set<string>;
  /** Events go out in order even when a visibility check has to ask the engine. */
  chain: Promise<void>;
  alive: boolean;
}

/** A client whose socket has this much unsent data is skipped for progress (not for states). */
const MAX_BUFFERED = 1 << 20;
const SNAPSHOT_RECENT = 50;

/**
 * The live channel of the portal: one socket per page, authenticated by the first message
 * (a token never travels in a URL, where proxies log it), pushing job states, progress and new
 * points for the VMs the user may see. After a reconnect the snapshot is the current state,
 * so a client never has to replay anything.
 */
export class EventHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly origins: Set<string>;

  constructor(private readonly opts: EventHubOptions) {
    this.origins = new Set(opts.corsOrigins);
    opts.queue.on('job', (job) => this.broadcastJob(job));
    opts.queue.on('progress', (job, progress) => this.broadcastProgress(job, progress));
    this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs ?? 30_000);
    this.heartbeat.unref();
  }

  /** For the HTTP server's `upgrade` event; other paths are refused. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = req.headers.origin;
    if (url.pathname !== EVENTS_PATH) return refuse(socket, 404, 'Not Found');
    // browsers always send Origin: only the engine's pages may open the socket
    if (origin !== undefined && !this.origins.has(origin)) return refuse(socket, 403, 'Forbidden');
    if (url.search !== '') return refuse(socket, 400, 'Bad Request'); // no token in URLs, ever
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  clientCount(): number {
    return this.clients.size;
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.ws.close(WS_CLOSE.shuttingDown, 'service stopping');
    this.clients.clear();
    this.wss.close();
  }

  private accept(ws: WebSocket): void {
    const timer = setTimeout(() => ws.close(WS_CLOSE.authTimeout, 'send {"type":"auth","token":…} first'), this.opts.authTimeoutMs ?? 10_000);
    ws.once('message', (data: RawData) => {
      clearTimeout(timer);
      const msg = parseMessage(data);
      if (msg?.type !== 'auth' || typeof msg.token !== 'string') {
        ws.close(WS_CLOSE.badMessage, 'the first message must be {"type":"auth","token":…}');
        return;
      }
      const token = msg.token;
      this.login(ws, token).catch((err: unknown) => {
        this.opts.log.info({ err: describeError(err) }, 'websocket refused');
        if (isAppError(err, 'AUTH_INVALID')) {
          this.opts.audit?.authFailure({ tokenKey: tokenKeyOf(token), code: err.code, message: err.message, method: 'WEBSOCKET', path: EVENTS_PATH, remote: null });
        }
        ws.close(WS_CLOSE.unauthorized, 'token refused by the engine');
      });
    });
    ws.on('close', () => clearTimeout(timer));
    ws.on('error', () => ws.terminate());
  }

  private async login(ws: WebSocket, token: string): Promise<void> {
    const principal = await this.opts.auth.authenticate(token);
    const vms = await this.opts.auth.visibleVms(principal);
    if (ws.readyState !== WebSocket.OPEN) return;
    const client: Client = { ws, principal, token, visible: new Set(vms.map((v) => v.id)), lost: new Set(), deleted: new Set(), chain: Promise.resolve(), alive: true };
    this.clients.add(client);
    ws.on('close', () => this.clients.delete(client));
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data: RawData) => {
      const msg = parseMessage(data);
      if (msg?.type === 'ping') send(client, { type: 'pong' });
      else send(client, { type: 'error', code: 'BAD_MESSAGE', message: 'only {"type":"ping"} is expected after auth' });
    });
    send(client, { type: 'ready', user: { userId: principal.userId, userName: principal.userName }, heartbeatSeconds: Math.round((this.opts.heartbeatMs ?? 30_000) / 1000) });
    // repository verifies concern everyone (with the points of their own VMs only)
    const ids = [...client.visible, REPOSITORY_JOB_VM_ID];
    const active = this.opts.queue.runningJobs().concat(this.opts.catalog.listJobs({ vmIds: ids, states: ['queued'], limit: 500 }).jobs);
    const recent = this.opts.catalog.listJobs({ vmIds: ids, limit: SNAPSHOT_RECENT }).jobs;
    const byId = new Map<string, Job>();
    for (const j of [...recent, ...active]) {
      if (isRepositoryJob(j)) byId.set(j.id, withProgress(repositoryJobFor(this.opts.catalog, j, client.visible), this.opts.queue.progressOf(j.id)));
      else if (client.visible.has(j.vmId)) byId.set(j.id, withProgress(j, this.opts.queue.progressOf(j.id)));
    }
    send(client, { type: 'snapshot', jobs: [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)) });
  }

  private broadcastJob(job: Job): void {
    for (const c of this.clients) {
      this.whenVisible(c, job.vmId, () => {
        // a repository verify goes to everyone, with the points of their own VMs only
        send(c, { type: 'job', job: isRepositoryJob(job) ? repositoryJobFor(this.opts.catalog, job, c.visible) : job });
        if (job.state === 'succeeded' && job.result && job.kind !== 'verify') {
          const point = this.opts.catalog.getPoint(job.result.pointId);
          if (point) send(c, { type: 'point', point });
        }
      });
    }
  }

  private broadcastProgress(job: Job, progress: JobProgress): void {
    for (const c of this.clients) {
      if (c.ws.bufferedAmount > MAX_BUFFERED) continue; // a slow client catches up on the next one
      this.whenVisible(c, job.vmId, () => send(c, { type: 'progress', jobId: job.id, vmId: job.vmId, progress }));
    }
  }

  /** Known VMs go out at once; a VM this client has not seen yet is checked with the engine. */
  private whenVisible(c: Client, vmId: string, fn: () => void): void {
    if (c.visible.has(vmId) || vmId === REPOSITORY_JOB_VM_ID) {
      c.chain = c.chain.then(fn);
      return;
    }
    if (c.deleted.has(vmId)) {
      c.chain = c.chain.then(fn);
      return;
    }
    const lost = c.lost.has(vmId);
    c.chain = c.chain
      .then(async () => {
        // a VM the last refresh took away is not asked again (the engine's per-VM answer may be
        // cached from before); a deleted one is, of the service account
        if (!lost && (await this.opts.auth.visibleVm(c.principal, vmId))) {
          c.visible.add(vmId);
          fn();
        } else if (await this.opts.deleted?.seenBy(c.principal, vmId)) {
          c.deleted.add(vmId);
          fn();
        }
      })
      .catch(() => undefined);
  }

  /** Pings every client; one that did not answer the last ping is gone. A token the engine
   *  no longer accepts (the user logged out) closes its socket. What the user may see is asked
   *  again: events of a VM they lost stop at once (not only once an event is checked). */
  private beat(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.ws.terminate();
        this.clients.delete(c);
        continue;
      }
      c.alive = false;
      c.ws.ping();
      this.opts.auth
        .authenticate(c.token)
        .then(async (p) => {
          c.principal = p;
          const now = new Set((await this.opts.auth.visibleVms(p)).map((v) => v.id));
          for (const id of c.visible) if (!now.has(id)) c.lost.add(id);
          for (const id of now) c.lost.delete(id);
          c.visible = now;
          for (const id of c.deleted) if (now.has(id) || !(await this.opts.deleted?.seenBy(p, id))) c.deleted.delete(id);
        })
        .catch((err: unknown) => {
          if (isAppError(err, 'AUTH_INVALID')) c.ws.close(WS_CLOSE.unauthorized, 'token no longer valid');
          // an engine that cannot answer now: keep what was known, ask again at the next beat
          else this.opts.log.warn({ err: describeError(err) }, 'websocket: visibility not refreshed');
        });
    }
  }
}

function withProgress(job: Job, live: JobProgress | null): Job {
  return live && job.state === 'running' ? { ...job, progress: live } : job;
}

function send(c: Client, msg: ServerMessage): void {
  if (c.ws.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify(msg));
}

function parseMessage(data: RawData): Partial<ClientMessage> | undefined {
  try {
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v) : undefined;
  } catch {
    return undefined;
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
