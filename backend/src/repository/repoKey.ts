/**
 * The master key of an encrypted repository (format 2, F2-DESIGN "Keys", "Ids", "Blob stored
 * form", "Manifests") and everything done with it per blob: chunk ids, sealing and opening blobs
 * and the manifest's `sealed` part, the key check. Pure functions over Node's crypto, no I/O:
 * the chunk workers run them too (they get the 64 key bytes in their init data).
 *
 * Nothing here ever puts key bytes into an error message, and a RepoKey prints as "[RepoKey]".
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'crypto';
import { inspect } from 'util';
import { AppError } from '../errors';

/** encKey(32) || idKey(32) */
export const MASTER_KEY_BYTES = 64;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const HALF = 32;
const KEY_CHECK_PREFIX = 'olvm-backup-key-check:';
const MANIFEST_AAD_PREFIX = 'olvm-backup-manifest:';

export interface RepoKey {
  /** AES-256-GCM key of blobs and sealed manifest parts */
  readonly encKey: Buffer;
  /** HMAC-SHA256 key of chunk ids and the key check */
  readonly idKey: Buffer;
}

/** A fresh random master key. */
export function newRepoKey(): RepoKey {
  return makeKey(randomBytes(MASTER_KEY_BYTES));
}

/** The key from its 64 bytes, or their base64 (what a worker gets in its init data). The bytes
 *  are copied, so the caller may wipe its buffer. */
export function repoKeyFromBytes(bytes: string | Buffer | Uint8Array): RepoKey {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'base64') : Buffer.from(bytes);
  if (b.length !== MASTER_KEY_BYTES) {
    throw new AppError('INVALID_ARGUMENT', `a repository master key has ${MASTER_KEY_BYTES} bytes, this one ${b.length}`);
  }
  return makeKey(b);
}

/** The key's 64 bytes (a new buffer): encKey || idKey. */
export function repoKeyBytes(key: RepoKey): Buffer {
  return Buffer.concat([key.encKey, key.idKey]);
}

/** Copies both halves; toJSON and util.inspect print no key bytes (a key logged by mistake, or
 *  put into an error's details, shows as "[RepoKey]"). They are not enumerable, so a structured
 *  clone (postMessage) still carries just the two buffers. */
function makeKey(b: Buffer): RepoKey {
  const key = { encKey: Buffer.from(b.subarray(0, HALF)), idKey: Buffer.from(b.subarray(HALF, MASTER_KEY_BYTES)) };
  Object.defineProperty(key, 'toJSON', { value: () => '[RepoKey]', enumerable: false });
  Object.defineProperty(key, inspect.custom, { value: () => '[RepoKey]', enumerable: false });
  return Object.freeze(key);
}

/** A chunk's id: SHA-256 of its plain content, or HMAC-SHA256(idKey, content) in an encrypted
 *  repository (so ids reveal nothing about content to whoever lacks the key). */
export function chunkId(key: RepoKey | null, plain: Uint8Array): Buffer {
  return key === null ? createHash('sha256').update(plain).digest() : createHmac('sha256', key.idKey).update(plain).digest();
}

/** AES-256-GCM with a given key: ciphertext || tag. */
export function gcmEncrypt(key: Buffer, nonce: Buffer, plain: Uint8Array, aad: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const body = c.update(plain);
  const last = c.final();
  return Buffer.concat([body, last, c.getAuthTag()]);
}

/** The plain bytes of ciphertext || tag, or undefined when authentication fails (wrong key,
 *  wrong AAD or changed bytes): never unauthenticated output. */
export function gcmDecrypt(key: Buffer, nonce: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG_BYTES || nonce.length !== NONCE_BYTES) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([body, d.final()]);
  } catch {
    body.fill(0);
    return undefined;
  }
}

/** A blob's stored form in an encrypted repository: nonce(12, random) || ciphertext || tag(16).
 *  `aad` binds it to its place (a blob: its 32-byte id), so a blob cannot be swapped for another. */
export function sealBlob(key: RepoKey, plain: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  return Buffer.concat([nonce, gcmEncrypt(key.encKey, nonce, plain, aad)]);
}

/** sealBlob for content given in pieces, returned in pieces (nonce, ciphertext parts, tag):
 *  the same bytes as sealBlob of their concatenation, without copying them together. */
export function sealBlobPieces(key: RepoKey, plain: readonly Uint8Array[], aad: Uint8Array): Buffer[] {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key.encKey, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const out: Buffer[] = [nonce];
  for (const p of plain) out.push(c.update(p));
  out.push(c.final(), c.getAuthTag());
  return out;
}

/** The plain content of a sealed blob; REPO_CORRUPT naming `what` when it is too short or fails
 *  authentication (a changed byte anywhere, another blob's AAD, another repository's key). */
export function openBlob(key: RepoKey, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < NONCE_BYTES + TAG_BYTES) {
    throw new AppError('REPO_CORRUPT', `${what}: its sealed form has ${buf.length} bytes, fewer than the ${NONCE_BYTES + TAG_BYTES} of nonce and tag`, {
      details: { kind: 'blob-auth-failed' },
    });
  }
  const plain = gcmDecrypt(key.encKey, buf.subarray(0, NONCE_BYTES), buf.subarray(NONCE_BYTES), aad);
  if (plain === undefined) {
    throw new AppError('REPO_CORRUPT', `${what} fails authentication: its bytes were changed, or it belongs to another place or another key`, {
      details: { kind: 'blob-auth-failed' },
    });
  }
  return plain;
}

/** The AAD of a manifest's `sealed` part: utf8("olvm-backup-manifest:" + pointId). */
export function manifestAad(pointId: string): Buffer {
  return Buffer.from(MANIFEST_AAD_PREFIX + pointId, 'utf8');
}

/** `value` as JSON, sealed (sealBlob), base64: the manifest's `sealed` field. */
export function sealJson(key: RepoKey, value: unknown, aad: Uint8Array): string {
  return sealBlob(key, Buffer.from(JSON.stringify(value), 'utf8'), aad).toString('base64');
}

/** The value sealJson sealed; REPO_CORRUPT naming `what` when the text is not base64, fails
 *  authentication, or (a writer's bug) holds no JSON. */
export function openJson(key: RepoKey, sealed: string, aad: Uint8Array, what: string): unknown {
  const bytes = strictBase64(sealed);
  if (bytes === undefined) throw new AppError('REPO_CORRUPT', `${what} is not base64`, { details: { kind: 'blob-auth-failed' } });
  const plain = openBlob(key, bytes, aad, what);
  try {
    return JSON.parse(plain.toString('utf8')) as unknown;
  } catch (err) {
    throw new AppError('REPO_CORRUPT', `${what} opens but holds no valid json`, { cause: err, details: { kind: 'sealed-not-json' } });
  }
}

/** Base64 (standard alphabet, padding optional) decoded, or undefined for any other text:
 *  Buffer.from(…, 'base64') would silently skip stray characters. */
export function strictBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const b = Buffer.from(text, 'base64');
  return b.toString('base64').replace(/=+$/, '') === text.replace(/=+$/, '') ? b : undefined;
}

/** config.json's `encryption.keyCheck`: base64 HMAC-SHA256(idKey, "olvm-backup-key-check:" +
 *  repositoryId). It tells a wrong master key (one typed from paper, another repository's) from
 *  a damaged blob, and reveals nothing of the key. */
export function keyCheck(key: RepoKey, repositoryId: string): string {
  return createHmac('sha256', key.idKey).update(KEY_CHECK_PREFIX + repositoryId, 'utf8').digest('base64');
}

/** REPO_KEY_WRONG unless `key` is the master key of repository `repositoryId` (its key check
 *  matches `expected`); REPO_INVALID when `expected` is no key check at all. */
export function checkKey(key: RepoKey, repositoryId: string, expected: string): void {
  const want = strictBase64(expected);
  if (want === undefined || want.length !== HALF) {
    throw new AppError('REPO_INVALID', `the key check of repository ${repositoryId} is not the base64 of ${HALF} bytes`);
  }
  const got = Buffer.from(keyCheck(key, repositoryId), 'base64');
  if (!timingSafeEqual(got, want)) {
    throw new AppError('REPO_KEY_WRONG', `the key is not the master key of repository ${repositoryId} (its key check differs)`, {
      details: { repositoryId },
    });
  }
}
