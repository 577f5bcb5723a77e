import { Client, utils as sshUtils, type ParsedKey } from 'ssh2';
import { AppError, describeError } from '../errors';
import { sha256Fingerprint, SshConnection } from '../hosts';

export interface ScannedHostKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `rsa-sha2-512`… */
  type: string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it */
  fingerprint: string;
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
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      client.end();
      if (key) resolve({ type: keyType(key), fingerprint: sha256Fingerprint(key) });
      else reject(err ?? new AppError('HOST_UNREACHABLE', `host ${address}:${port} presented no host key`));
    };
    client.on('error', (err) => finish(new AppError('HOST_UNREACHABLE', `cannot read the ssh host key of ${address}:${port}`, { cause: err })));
    client.on('close', () => finish(undefined));
    client.connect({
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
