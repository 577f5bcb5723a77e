import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../errors';
import { caFromPem, checkServerTrust, fetchEngineCa, sameFingerprint, type EngineCa } from './engineCa';
import type { SetupIo, SetupOptions } from './types';

/** new: write the CA beside the config; existing: a pinned CA file that still verifies; undefined: the system's CAs. */
export type CaDecision = { kind: 'new'; ca: EngineCa } | { kind: 'existing'; file: string } | undefined;

/**
 * Which CA the service trusts for the engine: one given with --engine-ca-file, the pinned one
 * while the engine still verifies against it, else the one the engine serves once its
 * fingerprint is confirmed (flag, prompt or --accept-engine-ca); none when the engine's web
 * certificate comes from a CA the system already trusts.
 */
export async function decideCa(o: SetupOptions, engineUrl: string, exCaFile: string | undefined, io: SetupIo): Promise<CaDecision> {
  if (o.engineCaFile !== undefined) {
    const pem = await fs.readFile(o.engineCaFile, 'utf8');
    const ca = caFromPem(pem, o.engineCaFile);
    const why = await checkServerTrust(engineUrl, pem);
    if (why) throw new AppError('SETUP_CA_UNTRUSTED', `the engine's certificate does not verify against ${o.engineCaFile}: ${why}`);
    io.say(`engine CA: ${ca.subject}, SHA256 ${ca.fingerprint} (given with --engine-ca-file)`);
    return { kind: 'new', ca };
  }
  if (exCaFile !== undefined) {
    // the pinned CA stays while the engine's certificate verifies against it (and it is the one asked for)
    const pem = await fs.readFile(exCaFile, 'utf8').catch(() => undefined);
    let ca: EngineCa | undefined;
    try {
      ca = pem !== undefined ? caFromPem(pem, exCaFile) : undefined;
    } catch {
      ca = undefined; // unreadable: fetched again below
    }
    const wanted = ca !== undefined && (o.engineCaFingerprint === undefined || sameFingerprint(o.engineCaFingerprint, ca.fingerprint));
    if (ca && wanted && (await checkServerTrust(engineUrl, ca.pem)) === undefined) {
      io.say(`engine CA: pinned already, SHA256 ${ca.fingerprint}`);
      return { kind: 'existing', file: exCaFile };
    }
  }
  const ca = await fetchEngineCa(engineUrl);
  io.say(`engine CA: ${ca.subject}`);
  io.say(`  SHA256 fingerprint ${ca.fingerprint}`);
  const compare = 'on the engine: openssl x509 -in /etc/pki/ovirt-engine/ca.pem -noout -fingerprint -sha256';
  if (o.engineCaFingerprint !== undefined) {
    if (!sameFingerprint(o.engineCaFingerprint, ca.fingerprint)) {
      throw new AppError('SETUP_CA_UNTRUSTED', `the engine serves a CA with fingerprint ${ca.fingerprint}, not ${o.engineCaFingerprint}: nothing was written`);
    }
  } else if (!o.acceptEngineCa) {
    if (!io.prompter) {
      throw new AppError('SETUP_CA_UNTRUSTED', `the engine CA is not confirmed: compare its fingerprint (${compare}) and pass --engine-ca-fingerprint ${ca.fingerprint}, or --accept-engine-ca`);
    }
    io.say(`  compare it: ${compare}`);
    if (!(await io.prompter.confirm('is this the engine CA?', { default: false }))) throw new AppError('SETUP_CA_UNTRUSTED', 'the engine CA was not confirmed: nothing was written');
  }
  const why = await checkServerTrust(engineUrl, ca.pem);
  if (why === undefined) return { kind: 'new', ca };
  if ((await checkServerTrust(engineUrl, undefined)) === undefined) {
    // a web certificate from another CA (the engine's Apache with a commercial certificate)
    io.say(`  the engine's web certificate is not signed by this CA (${why}) but by one this machine trusts: engine.caFile stays unset`);
    return undefined;
  }
  throw new AppError('SETUP_CA_UNTRUSTED', `the engine's certificate verifies neither against the CA it serves nor the system's CAs (${why}): pass the CA that signed it with --engine-ca-file`);
}

/** The CA the account check uses before anything is written (a temporary file). */
export async function tempCa(pem: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-setup-'));
  const file = path.join(dir, 'ca.pem');
  await fs.writeFile(file, pem, { mode: 0o600 });
  return file;
}
