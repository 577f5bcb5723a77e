// Logging in to one host over SSH: the connection settings, the pinned-key check during the
// handshake, and the coded errors (unreachable, key mismatch, login refused) naming the host.
import * as net from 'net';
import type { Client, ConnectConfig } from 'ssh2';
import { AppError } from '../errors';

/** How to reach one KVM host over SSH. The host key is pinned: there is no trust on first use. */
export interface SshHostConfig {
  host: string;
  /** default 22 */
  port?: number;
  username: string;
  /** private key (OpenSSH or PEM text) */
  privateKey: string | Buffer;
  passphrase?: string;
  /**
   * The host's expected key: either its public key (`ssh-ed25519 AAAA… [comment]`, a
   * known_hosts line, or the base64 blob) or its SHA-256 fingerprint as `ssh-keygen -lf`
   * prints it (`SHA256:…`). A host presenting another key is refused.
   */
  hostKey: string;
  /** default 10 s */
  connectTimeoutMs?: number;
  /** keepalive probes; a host silent for interval × 3 is declared lost. Default 5 s. */
  keepaliveIntervalMs?: number;
  /** The connection closes after this long with nothing using it; default 30 s. */
  idleCloseMs?: number;
  /** Exec channels open at once (OpenSSH's MaxSessions defaults to 10); default 4. */
  maxConcurrentExec?: number;
}

/** One logged-in connection and who wants to hear of its loss. */
export interface Live {
  client: Client;
  lostListeners: Set<(err: Error) => void>;
  ended: boolean;
}

/** What the connection's owner is told: logged in, and (later) lost. */
export interface LoginHooks {
  ready(live: Live): void;
  lost(live: Live, err: Error): void;
}

/** Opens and authenticates one connection; rejects with a coded error naming the host. */
export async function login(config: SshHostConfig, hostLabel: string, matches: (key: Buffer) => boolean, hooks: LoginHooks): Promise<Live> {
  // ssh2 (with its native helpers) loads with the first login: a process that reaches no host
  // over SSH (a local backup, most CLI commands) does not pay for it
  const ssh2 = await import('ssh2');
  return new Promise<Live>((resolve, reject) => {
    const client = new ssh2.Client();
    let keyRejected = false;
    let ready = false;
    const live: Live = { client, lostListeners: new Set(), ended: false };
    // Our own socket, watched before ssh2 sees its end: users of the connection (NBD and QMP
    // streams) are told the SSH connection was lost before ssh2 quietly closes their channels.
    const sock = net.createConnection({ host: config.host, port: config.port ?? 22 });
    sock.on('close', () => {
      if (ready) hooks.lost(live, new AppError('QMP_DISCONNECTED', `ssh connection to host ${hostLabel} lost`, { details: { host: hostLabel } }));
    });
    const cfg: ConnectConfig = {
      sock,
      host: config.host,
      port: config.port ?? 22,
      username: config.username,
      privateKey: config.privateKey,
      readyTimeout: config.connectTimeoutMs ?? 10_000,
      keepaliveInterval: config.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        const ok = matches(key);
        if (!ok) keyRejected = true;
        return ok;
      },
    };
    if (config.passphrase !== undefined) cfg.passphrase = config.passphrase;
    client.on('ready', () => {
      ready = true;
      hooks.ready(live);
      resolve(live);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (!ready) {
        reject(connectError(config, hostLabel, err, keyRejected));
        client.end();
        return;
      }
      hooks.lost(live, transportError(hostLabel, 'ssh connection failed', err));
    });
    client.on('close', () => {
      if (!ready) {
        reject(new AppError('HOST_UNREACHABLE', `ssh connection to host ${hostLabel} closed during login`, { details: { host: hostLabel, reason: 'UNREACHABLE' } }));
        return;
      }
      hooks.lost(live, new AppError('QMP_DISCONNECTED', `ssh connection to host ${hostLabel} lost`, { details: { host: hostLabel } }));
    });
    client.connect(cfg);
  });
}

function connectError(config: SshHostConfig, hostLabel: string, err: Error & { level?: string }, keyRejected: boolean): AppError {
  const details = { host: hostLabel };
  if (keyRejected) {
    return new AppError('HOST_KEY_MISMATCH', `ssh host key of host ${hostLabel} does not match the pinned key: refusing to connect`, {
      details: { ...details, reason: 'HOST_KEY_MISMATCH' },
    });
  }
  if (err.level === 'client-authentication') {
    return new AppError('HOST_AUTH_FAILED', `ssh login to host ${hostLabel} as ${config.username} was refused`, {
      cause: err,
      details: { ...details, reason: 'AUTH_FAILED' },
    });
  }
  return new AppError('HOST_UNREACHABLE', `cannot reach host ${hostLabel} over ssh: ${err.message}`, {
    cause: err,
    details: { ...details, reason: 'UNREACHABLE' },
  });
}

/** A failure of the connection under a command or stream, naming the host. */
export function transportError(hostLabel: string, what: string, err: Error): AppError {
  return new AppError('QMP_DISCONNECTED', `${what} on host ${hostLabel}: ${err.message}`, { cause: err, details: { host: hostLabel } });
}
