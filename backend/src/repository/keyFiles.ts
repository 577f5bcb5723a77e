/**
 * The key files of an encrypted repository, `<repo>/keys/<keyId>.json` (F2-DESIGN "Keys"): each
 * wraps the one master key under a passphrase (scrypt → AES-256-GCM). This module makes, opens,
 * lists, re-wraps and removes them, turns a paper key back into one, and reads the repository
 * identity (id, `encryption` block) they belong to from config.json.
 *
 * A key file written by someone hostile must not hurt the reader: its scrypt parameters are
 * bounded before use, and a file that is not a key file of this repository is REPO_INVALID
 * naming it while the other key files are still tried. No passphrase or key byte ever appears
 * in an error.
 */
import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import type { RepoEncryption } from './config';
import { KEYS_DIR } from './layout';
import { parsePaper } from './paperKey';
import { checkKey, gcmDecrypt, gcmEncrypt, MASTER_KEY_BYTES, NONCE_BYTES, repoKeyBytes, repoKeyFromBytes, strictBase64, TAG_BYTES, type RepoKey } from './repoKey';

export const KEY_FILE_FORMAT = 'olvm-backup-key';
export const KEY_FILE_VERSION = 1;
const SALT_BYTES = 16;
const KEY_ID = /^[0-9a-f]{16}$/;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
/** ~100 ms and 32 MiB per unlock on a server core. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 32768, r: 8, p: 1 });
/** What a key file may ask for: a hostile file must not make an unlock take gigabytes or minutes. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 256 * 1024 ** 2;
const MAX_COST = 2 ** 21;
/** Key files tried per unlock, and the size of one: files planted in keys/ must not make an open
 *  take minutes. */
const MAX_KEY_FILES = 16;
const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface KeyFileOptions {
  label?: string;
  /** lower N only to keep tests fast; the file records what was used */
  scrypt?: Partial<ScryptParams>;
}

/** A key file of keys/: `{ keyId, createdAt, label }`, or for a file that is none, its problem. */
export interface KeyInfo {
  keyId: string;
  createdAt: string | null;
  label: string | null;
  /** why this file is not a usable key file of the repository (then it opens nothing) */
  problem?: string;
}

export interface Unlocked {
  key: RepoKey;
  keyId: string;
  /** key files that were skipped as not valid (REPO_INVALID messages) */
  problems: string[];
}

interface KeyFile {
  format: typeof KEY_FILE_FORMAT;
  version: typeof KEY_FILE_VERSION;
  keyId: string;
  repositoryId: string;
  createdAt: string;
  label?: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  wrapped: { nonce: string; data: string };
}

/** A key file as read and checked; `file` is its path. */
type ValidKeyFile = KeyFile & { file: string };

/** Wraps `key` under `passphrase` in a new key file; its keyId. */
export async function createKeyFile(repoDir: string, repositoryId: string, key: RepoKey, passphrase: string, opts: KeyFileOptions = {}): Promise<string> {
  requireNewPassphrase(passphrase);
  const dir = path.join(repoDir, KEYS_DIR);
  await ensureKeysDir(repoDir);
  let keyId = newKeyId();
  while (await exists(path.join(dir, `${keyId}.json`))) keyId = newKeyId();
  await writeKeyFile(dir, await wrap(repositoryId, keyId, key, passphrase, new Date().toISOString(), opts));
  return keyId;
}

/** The master key from whichever key file `passphrase` opens. REPO_KEY_REQUIRED for an empty
 *  passphrase; REPO_KEY_WRONG when it opens none; REPO_INVALID when there is no valid key file
 *  at all. With `keyCheck` (config.json's), the key found is also checked against it. */
export async function unlockRepository(repoDir: string, repositoryId: string, passphrase: string, opts: { keyCheck?: string } = {}): Promise<Unlocked> {
  if (passphrase === '') {
    throw new AppError('REPO_KEY_REQUIRED', `repository ${repositoryId} is encrypted: a passphrase is needed to open it`, { details: { repositoryId } });
  }
  const { valid, problems } = await scan(repoDir, repositoryId);
  if (valid.length === 0) {
    const why = problems.length > 0 ? `: ${problems.join('; ')}` : '';
    throw new AppError('REPO_INVALID', `repository ${repositoryId} is encrypted but has no usable key file in ${path.join(repoDir, KEYS_DIR)}${why}`, {
      details: { repositoryId, problems },
    });
  }
  for (const kf of valid.slice(0, MAX_KEY_FILES)) {
    const key = await unwrap(kf, passphrase);
    if (key === undefined) continue;
    if (opts.keyCheck !== undefined) checkKey(key, repositoryId, opts.keyCheck);
    return { key, keyId: kf.keyId, problems };
  }
  const skipped = problems.length > 0 ? ` (${problems.length} more key file(s) are not valid and were skipped: ${problems.join('; ')})` : '';
  throw new AppError('REPO_KEY_WRONG', `the passphrase opens none of the ${valid.length} key(s) of repository ${repositoryId}${skipped}`, {
    details: { repositoryId, keys: valid.length },
  });
}

/** Every file of keys/, oldest first; files that are not valid key files carry their problem.
 *  Without `repositoryId`, key files are not checked to belong to the repository. */
export async function listKeys(repoDir: string, repositoryId?: string): Promise<KeyInfo[]> {
  const { valid, invalid } = await scan(repoDir, repositoryId);
  const keys: KeyInfo[] = valid.map((k) => ({ keyId: k.keyId, createdAt: k.createdAt, label: k.label ?? null }));
  keys.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.keyId.localeCompare(b.keyId));
  return [...keys, ...invalid.map((i) => ({ keyId: i.keyId, createdAt: null, label: null, problem: i.problem }))];
}

/** A new key file for `newPassphrase`, wrapping the master key `currentPassphrase` opens. */
export async function addKey(
  repoDir: string,
  repositoryId: string,
  currentPassphrase: string,
  newPassphrase: string,
  opts: KeyFileOptions & { keyCheck?: string } = {},
): Promise<string> {
  requireNewPassphrase(newPassphrase);
  const { key } = await unlockRepository(repoDir, repositoryId, currentPassphrase, opts);
  return createKeyFile(repoDir, repositoryId, key, newPassphrase, opts);
}

/**
 * Deletes key file `keyId` (also one that is not valid). `passphrase` must open a key of the
 * repository. Refused when no valid key would remain; the key the passphrase opens may go when
 * another remains (then only the other keys' passphrases open the repository).
 * Removing a key file does not change the master key: whoever kept a copy of the file and knows
 * its passphrase can still open the repository's backups.
 */
export async function removeKey(repoDir: string, repositoryId: string, passphrase: string, keyId: string, opts: { keyCheck?: string } = {}): Promise<void> {
  const opened = await unlockRepository(repoDir, repositoryId, passphrase, opts);
  const { valid, invalid } = await scan(repoDir, repositoryId);
  const target = valid.find((k) => k.keyId === keyId)?.file ?? invalid.find((i) => i.keyId === keyId)?.file;
  if (target === undefined) {
    const ids = [...valid.map((k) => k.keyId), ...invalid.map((i) => i.keyId)].join(', ');
    throw new AppError('INVALID_ARGUMENT', `repository ${repositoryId} has no key ${keyId} (its keys: ${ids})`);
  }
  // the passphrase opened a valid key, so when none remains the target is that key and the last one
  if (!valid.some((k) => k.keyId !== keyId)) {
    const whose = opened.keyId === keyId ? ' (the one this passphrase opens)' : '';
    throw new AppError(
      'INVALID_ARGUMENT',
      `refusing to remove key ${keyId}${whose}: it is the last key of repository ${repositoryId}, and without a key nothing can open its backups (add another key first)`,
      { details: { repositoryId, keyId } },
    );
  }
  await fs.rm(target);
  await fsyncDir(path.dirname(target));
}

/** Re-wraps the key file `oldPassphrase` opens under `newPassphrase` (new salt, new nonce, same
 *  keyId, createdAt and label), replacing it atomically; its keyId. */
export async function changePassphrase(
  repoDir: string,
  repositoryId: string,
  oldPassphrase: string,
  newPassphrase: string,
  opts: Pick<KeyFileOptions, 'scrypt'> & { keyCheck?: string } = {},
): Promise<string> {
  requireNewPassphrase(newPassphrase);
  const { key, keyId } = await unlockRepository(repoDir, repositoryId, oldPassphrase, opts);
  const { valid } = await scan(repoDir, repositoryId);
  const old = valid.find((k) => k.keyId === keyId);
  if (old === undefined) throw new AppError('REPO_INVALID', `key ${keyId} of repository ${repositoryId} disappeared while its passphrase was being changed`);
  const label = old.label === undefined ? {} : { label: old.label };
  await writeKeyFile(path.join(repoDir, KEYS_DIR), await wrap(repositoryId, keyId, key, newPassphrase, old.createdAt, { ...opts, ...label }));
  return keyId;
}

/** A new key file for `newPassphrase` from a paper key (paperKey.ts), once the paper is known to
 *  be this repository's: same repository id, and its key matches config.json's `keyCheck`. */
export async function recoverWithPaper(
  repoDir: string,
  repositoryId: string,
  expectedKeyCheck: string,
  paperText: string,
  newPassphrase: string,
  opts: KeyFileOptions = {},
): Promise<string> {
  requireNewPassphrase(newPassphrase);
  const paper = parsePaper(paperText);
  if (paper.repositoryId !== repositoryId) {
    throw new AppError('REPO_KEY_WRONG', `the paper key is for repository ${paper.repositoryId}, this is repository ${repositoryId}`, {
      details: { repositoryId, paperRepositoryId: paper.repositoryId },
    });
  }
  checkKey(paper.key, repositoryId, expectedKeyCheck);
  return createKeyFile(repoDir, repositoryId, paper.key, newPassphrase, opts);
}

/** The repository's id and `encryption` block, read from config.json directly (the key commands
 *  need nothing else). REPO_INVALID for a repository that is not encrypted. */
export async function readRepoIdentity(repoDir: string): Promise<{ repositoryId: string; encryption: RepoEncryption }> {
  const file = path.join(repoDir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new AppError('REPO_NOT_FOUND', `no repository at ${repoDir} (missing config.json)`, { cause: err });
    if (err instanceof SyntaxError) throw new AppError('REPO_INVALID', `repository config ${file} is not valid json`, { cause: err });
    throw new AppError('REPO_IO_ERROR', `reading ${file} failed`, { cause: err });
  }
  const c = isObject(raw) ? raw : {};
  const repositoryId = c['repositoryId'];
  if (typeof repositoryId !== 'string' || repositoryId === '') throw new AppError('REPO_INVALID', `repository config ${file} has no repositoryId`);
  const e = c['encryption'];
  if (e === undefined || e === null) {
    throw new AppError('REPO_INVALID', `repository ${repoDir} is not encrypted: it has no keys`, { details: { repositoryId } });
  }
  const check = isObject(e) && typeof e['keyCheck'] === 'string' ? strictBase64(e['keyCheck']) : undefined;
  if (!isObject(e) || e['algorithm'] !== 'aes-256-gcm' || e['idHash'] !== 'hmac-sha256' || e['kdf'] !== 'scrypt' || check?.length !== 32) {
    throw new AppError('REPO_INVALID', `repository config ${file}: its encryption block is not one this program knows (aes-256-gcm, hmac-sha256, scrypt, a key check)`);
  }
  return { repositoryId, encryption: { algorithm: 'aes-256-gcm', idHash: 'hmac-sha256', kdf: 'scrypt', keyCheck: e['keyCheck'] as string } };
}

// ---- key file contents

async function wrap(repositoryId: string, keyId: string, key: RepoKey, passphrase: string, createdAt: string, opts: KeyFileOptions): Promise<KeyFile> {
  const params = { ...DEFAULT_SCRYPT, ...opts.scrypt };
  const bound = scryptBound(params);
  if (bound !== undefined) throw new AppError('INVALID_ARGUMENT', `scrypt parameters ${JSON.stringify(params)}: ${bound}`);
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const kek = await deriveKek(passphrase, salt, params);
  const master = repoKeyBytes(key);
  try {
    const data = gcmEncrypt(kek, nonce, master, wrapAad(repositoryId, keyId));
    const label = opts.label === undefined || opts.label === '' ? {} : { label: opts.label };
    return {
      format: KEY_FILE_FORMAT,
      version: KEY_FILE_VERSION,
      keyId,
      repositoryId,
      createdAt,
      ...label,
      kdf: { name: 'scrypt', ...params, salt: salt.toString('base64') },
      wrapped: { nonce: nonce.toString('base64'), data: data.toString('base64') },
    };
  } finally {
    kek.fill(0);
    master.fill(0);
  }
}

/** The master key, or undefined when the passphrase is not this file's. */
async function unwrap(kf: ValidKeyFile, passphrase: string): Promise<RepoKey | undefined> {
  const kek = await deriveKek(passphrase, Buffer.from(kf.kdf.salt, 'base64'), kf.kdf);
  try {
    const master = gcmDecrypt(kek, Buffer.from(kf.wrapped.nonce, 'base64'), Buffer.from(kf.wrapped.data, 'base64'), wrapAad(kf.repositoryId, kf.keyId));
    if (master === undefined) return undefined;
    const key = repoKeyFromBytes(master);
    master.fill(0);
    return key;
  } finally {
    kek.fill(0);
  }
}

/** KEK = scrypt(passphrase, salt, 32). The passphrase is taken in Unicode NFC, so the same
 *  passphrase typed on systems that compose accents differently gives the same key. */
function deriveKek(passphrase: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r + (1 << 20) };
  return new Promise((resolve, reject) => {
    scryptCb(Buffer.from(passphrase.normalize('NFC'), 'utf8'), salt, 32, options, (err, kek) => (err ? reject(err) : resolve(kek)));
  });
}

function wrapAad(repositoryId: string, keyId: string): Buffer {
  return Buffer.from(`olvm-backup-key:${repositoryId}:${keyId}`, 'utf8');
}

/** Why these parameters are refused, or undefined when they are fine. */
function scryptBound(p: ScryptParams): string | undefined {
  const int = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;
  if (!int(p.N) || p.N < 2 || (p.N & (p.N - 1)) !== 0) return 'N must be a power of two';
  if (p.N > MAX_N) return `N above ${MAX_N}`;
  if (!int(p.r) || p.r > MAX_R) return `r must be 1 to ${MAX_R}`;
  if (!int(p.p) || p.p > MAX_P) return `p must be 1 to ${MAX_P}`;
  if (128 * p.N * p.r > MAX_MEMORY) return `N*r needs more than ${MAX_MEMORY / 1024 ** 2} MiB`;
  if (p.N * p.r * p.p > MAX_COST) return `N*r*p above ${MAX_COST}`;
  return undefined;
}

/** The key files of keys/: valid ones (of `repositoryId` when given) and the others with why. */
async function scan(repoDir: string, repositoryId: string | undefined): Promise<{ valid: ValidKeyFile[]; invalid: { keyId: string; file: string; problem: string }[]; problems: string[] }> {
  const dir = path.join(repoDir, KEYS_DIR);
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { valid: [], invalid: [], problems: [] };
    throw new AppError('REPO_IO_ERROR', `listing ${dir} failed`, { cause: err });
  }
  const valid: ValidKeyFile[] = [];
  const invalid: { keyId: string; file: string; problem: string }[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      valid.push(await readKeyFile(file, repositoryId));
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'REPO_INVALID') throw err;
      invalid.push({ keyId: name.slice(0, -'.json'.length), file, problem: err.message });
    }
  }
  return { valid, invalid, problems: invalid.map((i) => i.problem) };
}

/** REPO_INVALID naming the file for anything but a key file of `repositoryId` with parameters
 *  in bounds. */
async function readKeyFile(file: string, repositoryId: string | undefined): Promise<ValidKeyFile> {
  const bad = (why: string): AppError => new AppError('REPO_INVALID', `key file ${file}: ${why}`, { details: { file } });
  let raw: unknown;
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw bad('not a file');
    if (st.size > MAX_KEY_FILE_BYTES) throw bad(`${st.size} bytes, larger than a key file can be`);
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof SyntaxError) throw bad('not valid json');
    // one unreadable entry must not stop the other key files from being tried
    if (isErrno(err, 'EACCES', 'EPERM', 'EISDIR', 'ELOOP', 'ENOENT')) throw bad(`cannot be read (${(err as NodeJS.ErrnoException).code})`);
    throw new AppError('REPO_IO_ERROR', `reading key file ${file} failed`, { cause: err });
  }
  if (!isObject(raw)) throw bad('not a json object');
  const k = raw;
  if (k['format'] !== KEY_FILE_FORMAT) throw bad(`format is ${JSON.stringify(k['format'])}, expected "${KEY_FILE_FORMAT}"`);
  if (k['version'] !== KEY_FILE_VERSION) throw bad(`unsupported version ${JSON.stringify(k['version'])}`);
  const keyId = k['keyId'];
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId) || path.basename(file) !== `${keyId}.json`) throw bad('its keyId is not 16 hex digits matching its file name');
  if (typeof k['repositoryId'] !== 'string') throw bad('no repositoryId');
  if (repositoryId !== undefined && k['repositoryId'] !== repositoryId) throw bad(`it belongs to repository ${k['repositoryId']}, not ${repositoryId}`);
  if (typeof k['createdAt'] !== 'string') throw bad('no createdAt');
  if (k['label'] !== undefined && typeof k['label'] !== 'string') throw bad('its label is not a string');
  const kdf = k['kdf'];
  if (!isObject(kdf) || kdf['name'] !== 'scrypt') throw bad('its kdf is not scrypt');
  const params = { N: kdf['N'], r: kdf['r'], p: kdf['p'] };
  if (typeof params.N !== 'number' || typeof params.r !== 'number' || typeof params.p !== 'number') throw bad('its scrypt N, r, p are not numbers');
  const bound = scryptBound(params as ScryptParams);
  if (bound !== undefined) throw bad(`refusing its scrypt parameters (${bound})`);
  const wrapped = k['wrapped'];
  if (!isObject(wrapped)) throw bad('no wrapped key');
  if (b64Length(kdf['salt']) !== SALT_BYTES) throw bad(`its salt is not the base64 of ${SALT_BYTES} bytes`);
  if (b64Length(wrapped['nonce']) !== NONCE_BYTES) throw bad(`its nonce is not the base64 of ${NONCE_BYTES} bytes`);
  if (b64Length(wrapped['data']) !== MASTER_KEY_BYTES + TAG_BYTES) throw bad(`its wrapped key is not the base64 of ${MASTER_KEY_BYTES + TAG_BYTES} bytes`);
  return { ...(raw as unknown as KeyFile), file };
}

async function writeKeyFile(dir: string, kf: KeyFile): Promise<void> {
  // readable by the repository's account only: a wrapped key invites an offline guess of its passphrase
  await writeFileAtomic(path.join(dir, `${kf.keyId}.json`), Buffer.from(JSON.stringify(kf, null, 2) + '\n'), { mode: 0o600 });
}

/** keys/, made (and its entry made durable) when missing, for the repository's account only. */
async function ensureKeysDir(repoDir: string): Promise<void> {
  const dir = path.join(repoDir, KEYS_DIR);
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    if (isErrno(err, 'ENOENT')) throw new AppError('REPO_NOT_FOUND', `no repository at ${repoDir}`, { cause: err });
    throw new AppError('REPO_IO_ERROR', `making ${dir} failed`, { cause: err });
  }
  await fsyncDir(repoDir);
}

function requireNewPassphrase(passphrase: string): void {
  if (passphrase === '') throw new AppError('INVALID_ARGUMENT', 'the new passphrase is empty');
}

const newKeyId = (): string => randomBytes(8).toString('hex');

const exists = (file: string): Promise<boolean> => fs.access(file).then(() => true, () => false);

function b64Length(v: unknown): number {
  return typeof v === 'string' ? (strictBase64(v)?.length ?? -1) : -1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
