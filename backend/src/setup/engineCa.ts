import { X509Certificate } from 'crypto';
import * as https from 'https';
import * as net from 'net';
import * as tls from 'tls';
import { AppError } from '../errors';

/** Where every oVirt/OLVM engine publishes its CA (ovirt-ui-plugin.md §4). */
export const PKI_RESOURCE = '/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA';

export interface EngineCa {
  pem: string;
  /** `AB:CD:…`, SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it */
  fingerprint: string;
  subject: string;
}

/**
 * Downloads the CA the engine serves. Nothing is trusted yet, so the TLS connection is not
 * verified here: the caller shows the fingerprint for the admin to compare (or compares it
 * with one given on the command line) and then checks that the engine's own certificate
 * chains to it (`checkServerTrust`).
 */
export async function fetchEngineCa(engineUrl: string, timeoutMs = 20_000): Promise<EngineCa> {
  const url = new URL(`${engineUrl.replace(/\/+$/, '')}${PKI_RESOURCE}`);
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new AppError('SETUP_CA_UNTRUSTED', `the engine did not serve its CA at ${url.href} (http ${res.statusCode})`));
        else resolve(text);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(new AppError('ENGINE_UNREACHABLE', `cannot fetch the engine CA from ${url.href}`, { cause: err })));
  });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(body)?.[0];
  if (!pem) throw new AppError('SETUP_CA_UNTRUSTED', `${url.href} did not answer with a PEM certificate`);
  const cert = parseCert(pem, url.href);
  if (!cert.ca) throw new AppError('SETUP_CA_UNTRUSTED', `the certificate at ${url.href} is not a CA certificate (${cert.subject})`);
  return { pem: `${pem}\n`, fingerprint: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ', ') };
}

export function caFromPem(pem: string, where: string): EngineCa {
  const cert = parseCert(pem, where);
  return { pem, fingerprint: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ', ') };
}

/** `ab:cd…`, `ABCD…` or `SHA256 Fingerprint=AB:CD…` all name the same fingerprint. */
export function sameFingerprint(given: string, actual: string): boolean {
  const norm = (s: string): string => s.replace(/^.*=/, '').replace(/[^0-9a-f]/gi, '').toLowerCase();
  return norm(given) !== '' && norm(given) === norm(actual);
}

/**
 * Whether a TLS connection to the engine verifies against `caPem` (undefined: the system's
 * CAs), host name included. Returns undefined when it does, else why not.
 */
export async function checkServerTrust(engineUrl: string, caPem: string | undefined, timeoutMs = 20_000): Promise<string | undefined> {
  const u = new URL(engineUrl);
  const port = Number(u.port || 443);
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: u.hostname,
      port,
      servername: net.isIP(u.hostname) ? undefined : u.hostname,
      ...(caPem !== undefined ? { ca: caPem } : {}),
      rejectUnauthorized: true,
      timeout: timeoutMs,
    });
    const done = (why: string | undefined): void => {
      socket.destroy();
      resolve(why);
    };
    socket.once('secureConnect', () => done(undefined));
    socket.once('timeout', () => done(`no TLS answer within ${timeoutMs} ms`));
    socket.once('error', (err: NodeJS.ErrnoException) => done(`${err.code ?? 'TLS'}: ${err.message}`));
  });
}

function parseCert(pem: string, where: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new AppError('SETUP_CA_UNTRUSTED', `${where} is not a valid certificate`, { cause: err });
  }
}
