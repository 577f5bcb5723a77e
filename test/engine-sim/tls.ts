import { existsSync, mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { runTool } from '../../backend/src/util/exec';

export interface SimPki {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * An engine-like PKI made with the openssl CLI: a CA (what pki-resource serves) and a server
 * certificate for 127.0.0.1 / localhost signed by it. Made once per data dir.
 */
export async function ensurePki(dataDir: string): Promise<SimPki> {
  const dir = path.join(dataDir, 'pki');
  const pki: SimPki = { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'engine.cer'), keyFile: path.join(dir, 'engine.key') };
  if (existsSync(pki.caFile) && existsSync(pki.certFile) && existsSync(pki.keyFile)) return pki;
  mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const csr = path.join(dir, 'engine.csr');
  const ext = path.join(dir, 'engine.ext');
  await runTool('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', pki.caFile, '-days', '3650', '-subj', '/C=US/O=sim.local/CN=engine-sim CA']);
  await runTool('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', pki.keyFile, '-out', csr, '-subj', '/C=US/O=sim.local/CN=localhost']);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await runTool('openssl', ['x509', '-req', '-in', csr, '-CA', pki.caFile, '-CAkey', caKey, '-CAcreateserial', '-out', pki.certFile, '-days', '3650', '-extfile', ext]);
  return pki;
}
