/**
 * NbdServer: a read-only NBD server of our own (no library) on a unix socket or a TCP port, TLS
 * optional (STARTTLS, then required). Each connection runs the handshake (serverHandshake.ts)
 * and then serves requests (serverSession.ts) from an ExportSource; any number of clients at
 * once and one after another (libguestfs, qemu and nbdcopy's multi-conn all open several). A
 * client that breaks the protocol loses its connection, never the server. close() stops
 * accepting, closes every connection, waits for the requests being served (a source's reads
 * must not outlive what it reads from) and removes the unix socket.
 */
import { promises as fs } from 'fs';
import * as net from 'net';
import * as tls from 'tls';
import { AppError, describeError } from '../errors';
import type { Logger } from '../util/log';
import { ServerConnection } from './serverConn';
import { serverHandshake, type HandshakeConfig } from './serverHandshake';
import { serveTransmission } from './serverSession';
import type { ExportSource } from './types';

export type NbdListen = { socket: string } | { port: number; host?: string };

export interface NbdServerOptions {
  /** The first export is also the default one (what the empty export name opens). */
  exports: ReadonlyArray<{ name: string; source: ExportSource }>;
  listen: NbdListen;
  /** PEM certificate chain and key: clients must then start TLS before anything else. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  log?: Logger;
  /** Connections at once (default 32); more are refused by the kernel's backlog. */
  maxConnections?: number;
  /** Requests served at once per connection (default 16: nbdcopy opens four connections, and
   *  more in flight only holds more chunk buffers in socket queues); more wait in the socket. */
  maxInFlight?: number;
  /** The greeting to NBD_OPT_GO, and a TLS handshake (default 30 s each). */
  handshakeTimeoutMs?: number;
  /** NBD_INFO_BLOCK_SIZE's preferred size (default 4096; a power of two ≥ 512). */
  preferredBlock?: number;
}

export interface NbdServerAddress {
  socket?: string;
  host?: string;
  port?: number;
  tls: boolean;
  /** What qemu-img, nbdcopy and nbdinfo take (libnbd's URI form). */
  uri: string;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

export class NbdServer {
  private readonly sessions = new Set<Promise<void>>();
  private readonly open = new Set<ServerConnection>();
  private stopping: Promise<void> | undefined;
  private seq = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: NbdServerOptions,
    private readonly config: HandshakeConfig,
    readonly address: NbdServerAddress,
  ) {
    server.on('connection', (socket: net.Socket) => this.accept(socket));
  }

  /** Listens; NBD_LISTEN_FAILED when the socket path or port is taken. */
  static async start(opts: NbdServerOptions): Promise<NbdServer> {
    const first = opts.exports[0];
    if (!first) throw new AppError('INVALID_ARGUMENT', 'an nbd server needs at least one export');
    const preferredBlock = opts.preferredBlock ?? 4096;
    if (!(preferredBlock >= 512 && (preferredBlock & (preferredBlock - 1)) === 0)) throw new AppError('INVALID_ARGUMENT', `preferred block size ${preferredBlock} is not a power of two ≥ 512`);
    let secureContext: tls.SecureContext | undefined;
    if (opts.tls) {
      try {
        secureContext = tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key });
      } catch (err) {
        throw new AppError('INVALID_ARGUMENT', 'the tls certificate or key cannot be used', { cause: err });
      }
    }
    const config: HandshakeConfig = {
      exports: new Map(opts.exports.map((e) => [e.name, e.source])),
      defaultName: first.name,
      tls: secureContext,
      tlsTimeoutMs: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      preferredBlock,
    };
    const server = net.createServer({ pauseOnConnect: false });
    server.maxConnections = opts.maxConnections ?? 32;
    // until the socket's mode is narrowed below, anyone could have connected: such a connection
    // is closed, never served
    const tooEarly = (socket: net.Socket): void => void socket.destroy();
    server.on('connection', tooEarly);
    await listen(server, opts.listen);
    const tlsOn = secureContext !== undefined;
    let address: NbdServerAddress;
    if ('socket' in opts.listen) {
      // the export's bytes are the backup's: only this account may connect
      await fs.chmod(opts.listen.socket, 0o600);
      address = { socket: opts.listen.socket, tls: tlsOn, uri: `nbd${tlsOn ? 's' : ''}+unix:///${encodeURIComponent(first.name)}?socket=${opts.listen.socket}` };
    } else {
      const a = server.address() as net.AddressInfo;
      const hostPart = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      address = { host: a.address, port: a.port, tls: tlsOn, uri: `nbd${tlsOn ? 's' : ''}://${hostPart}:${a.port}/${encodeURIComponent(first.name)}` };
    }
    server.off('connection', tooEarly);
    return new NbdServer(server, opts, config, address);
  }

  /** Connections open now. */
  get connections(): number {
    return this.open.size;
  }

  /** Idempotent. Waits at most `timeoutMs` for the requests being served. */
  close(timeoutMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const c of this.open) c.destroy();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(this.sessions), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
      if ('socket' in this.opts.listen) await fs.rm(this.opts.listen.socket, { force: true });
    })();
    return this.stopping;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const label = 'socket' in this.opts.listen ? `client ${++this.seq} on ${this.opts.listen.socket}` : `client ${++this.seq} ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const conn = new ServerConnection(socket, label);
    this.open.add(conn);
    conn.onClose(() => this.open.delete(conn));
    const session = this.session(conn);
    this.sessions.add(session);
    void session.finally(() => this.sessions.delete(session));
  }

  /** One connection, start to end; never rejects. */
  private async session(conn: ServerConnection): Promise<void> {
    const log = this.opts.log;
    const timeoutMs = this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      log?.warn({ client: conn.label }, `nbd client did not finish the handshake within ${timeoutMs} ms; connection closed`);
      conn.destroy();
    }, timeoutMs);
    try {
      const chosen = await serverHandshake(conn, this.config);
      clearTimeout(timer);
      if (!chosen) return;
      log?.info({ client: conn.label, export: chosen.name, structured: chosen.structured, tls: conn.tls }, 'nbd client connected');
      await serveTransmission(conn, chosen, { maxInFlight: this.opts.maxInFlight ?? 16, log });
      log?.info({ client: conn.label, export: chosen.name }, 'nbd client disconnected');
    } catch (err) {
      if (!conn.closed) log?.warn({ client: conn.label, err: describeError(err) }, 'nbd connection closed');
      conn.destroy();
    } finally {
      clearTimeout(timer);
    }
  }
}

async function listen(server: net.Server, where: NbdListen): Promise<void> {
  const once = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if ('socket' in where) server.listen(where.socket, done);
      else server.listen(where.port, where.host ?? '127.0.0.1', done);
    });
  try {
    await once();
  } catch (err) {
    // a socket file nobody listens on is what a killed server leaves: replaced
    if ('socket' in where && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && (await isSocketFile(where.socket)) && !(await someoneListens(where.socket))) {
      await fs.rm(where.socket, { force: true });
      try {
        await once();
        return;
      } catch (again) {
        err = again;
      }
    }
    const at = 'socket' in where ? `unix socket ${where.socket}` : `${where.host ?? '127.0.0.1'}:${where.port}`;
    const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new AppError('NBD_LISTEN_FAILED', `cannot serve nbd on ${at}${inUse ? ': it is in use' : ''}`, { cause: err });
  }
}

async function isSocketFile(p: string): Promise<boolean> {
  const st = await fs.lstat(p).catch(() => undefined);
  return st?.isSocket() === true;
}

function someoneListens(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: socketPath });
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(true), 2_000).unref();
  });
}
