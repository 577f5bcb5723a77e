import * as net from 'net';
import { Client, utils as sshUtils, type ParsedKey } from 'ssh2';
import { AppError, describeError } from '../errors';
import { sha256Fingerprint, shellCommand, SshConnection } from '../hosts';
import { agentCommandArgv, commandJson, DEFAULT_LIBVIRT_URI, eventListenerArgv, monitorCommandArgv, sudoListArgv, VIRSH_QGA_COMMANDS, VIRSH_QMP_COMMANDS } from '../qmp';

export interface ScannedHostKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `rsa-sha2-512`… */
  type: string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it */
  fingerprint: string;
  /** this machine's address on the connection: what the host sees (its from="…") */
  localAddress: string | undefined;
}

/**
 * The key a host presents, read without logging in, with the same algorithm preferences the
 * service's SSH links use, so the pinned key is the one they will be shown.
 */
export function scanHostKey(address: string, port: number, timeoutMs = 10_000): Promise<ScannedHostKey> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    let settled = false;
    let localAddress: string | undefined;
    const sock = net.createConnection({ host: address, port });
    sock.once('connect', () => {
      localAddress = sock.localAddress?.replace(/^::ffff:/, '');
    });
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      client.end();
      sock.destroy();
      if (key) resolve({ type: keyType(key), fingerprint: sha256Fingerprint(key), localAddress });
      else reject(err ?? new AppError('HOST_UNREACHABLE', `host ${address}:${port} presented no host key`));
    };
    client.on('error', (err) => finish(new AppError('HOST_UNREACHABLE', `cannot read the ssh host key of ${address}:${port}`, { cause: err })));
    client.on('close', () => finish(undefined));
    client.connect({
      sock,
      host: address,
      port,
      username: 'olvm-backup-setup',
      readyTimeout: timeoutMs,
      // refusing the key ends the handshake before any authentication
      hostVerifier: (k: Buffer) => {
        key = k;
        setImmediate(() => finish(undefined));
        return false;
      },
    });
  });
}

/** The wire name inside a public key blob (its first SSH string). */
function keyType(blob: Buffer): string {
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('ascii') : 'unknown';
}

/** Whether the service's key may log in (host key pinned); undefined when it may, else why not. */
export async function checkSshLogin(o: { address: string; port: number; user: string; privateKey: string; hostKey: string }): Promise<string | undefined> {
  const conn = new SshConnection({ host: o.address, port: o.port, username: o.user, privateKey: o.privateKey, hostKey: o.hostKey, connectTimeoutMs: 10_000 });
  try {
    await conn.connectNow();
    return undefined;
  } catch (err) {
    return describeError(err);
  } finally {
    conn.closeNow();
  }
}

/**
 * Whether sudo on the host lets the account run every virsh command line the product sends
 * (`sudo -n -l` of each, one exec); undefined when it does, else what sudo said.
 */
export async function checkSudoRule(o: { address: string; port: number; user: string; privateKey: string; hostKey: string; libvirtUri: string | undefined }): Promise<string | undefined> {
  const access = { uri: o.libvirtUri ?? DEFAULT_LIBVIRT_URI, sudo: true };
  const probe = 'olvm-setup-probe';
  // built by the functions the links run them with; a command with arguments stands for those
  // that take some (the rule admits an "arguments" object)
  const lines = [
    ...VIRSH_QMP_COMMANDS.map((c) => monitorCommandArgv(access, probe, commandJson(c, c === 'query-named-block-nodes' ? { flat: true } : undefined))),
    ...VIRSH_QGA_COMMANDS.map((c) => agentCommandArgv(access, probe, commandJson(c), 10_000)),
    eventListenerArgv(access, probe),
  ].map(sudoListArgv);
  // one exec; the first command sudo would not run is named
  const script = lines.map((argv) => `${shellCommand(argv)} >/dev/null || { echo ${shellCommand([`not allowed: ${argv.slice(3).join(' ')}`])} >&2; exit 1; }`).join('\n');
  const conn = new SshConnection({ host: o.address, port: o.port, username: o.user, privateKey: o.privateKey, hostKey: o.hostKey, connectTimeoutMs: 10_000 });
  try {
    const r = await conn.run(['sh', '-c', script], { timeoutMs: 60_000 });
    return r.code === 0 ? undefined : (r.stderr.trim().split('\n').slice(-2).join(' ') || `exit status ${String(r.code)}`);
  } catch (err) {
    return describeError(err);
  } finally {
    conn.closeNow();
  }
}

/** A new ed25519 key pair in OpenSSH format. */
export function newClientKey(comment: string): { privateKey: string; publicKey: string } {
  const k = sshUtils.generateKeyPairSync('ed25519', { comment });
  return { privateKey: k.private, publicKey: `${k.public.trim()}\n` };
}

/** The public half of an OpenSSH private key, `ssh-ed25519 AAAA… comment`. */
export function publicKeyOf(privateKey: string, comment: string): string {
  const key: ParsedKey | Error = sshUtils.parseKey(privateKey);
  if (key instanceof Error) throw new AppError('INVALID_ARGUMENT', `not a usable ssh private key: ${key.message}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}\n`;
}
