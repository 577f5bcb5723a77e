import { createHash, createHmac } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inspect } from 'util';
import { Worker } from 'worker_threads';
import { readPassphrase } from '../../backend/src/config';
import { AppError, describeError, type ErrorCode } from '../../backend/src/errors';
import {
  addKey,
  changePassphrase,
  checkKey,
  chunkId,
  createKeyFile,
  keyCheck,
  listKeys,
  manifestAad,
  newRepoKey,
  openBlob,
  openJson,
  readRepoIdentity,
  removeKey,
  repoKeyBytes,
  repoKeyFromBytes,
  sealBlob,
  sealJson,
  unlockRepository,
  type RepoKey,
} from '../../backend/src/repository';

// Real key files in a temp dir; scrypt with a low N so the suite stays fast (unlock reads N from the file).
const FAST = { scrypt: { N: 1024 } };
const REPO_ID = '6f1c2b9e-4a57-4d2e-9b1a-0c3d5e7f9a21';
const PASS = 'correct horse battery staple';
let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-repokeys-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The AppError `p` rejects with (fails the test when it resolves or throws anything else). */
async function rejection(p: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}
function thrown(fn: () => unknown, code: ErrorCode): AppError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}
const same = (a: RepoKey, b: RepoKey): boolean => repoKeyBytes(a).equals(repoKeyBytes(b));
const keyFile = (keyId: string): string => path.join(dir, 'keys', `${keyId}.json`);

describe('master key, ids, sealed blobs', () => {
  const key = newRepoKey();
  const plain = Buffer.from('the content of one chunk, zstd-compressed in real life');
  const id = chunkId(key, plain);

  test('the key has two 32-byte halves, survives its 64 bytes and base64, and prints no bytes', () => {
    expect(key.encKey.length).toBe(32);
    expect(key.idKey.length).toBe(32);
    expect(key.encKey.equals(key.idKey)).toBe(false);
    const bytes = repoKeyBytes(key);
    expect(same(repoKeyFromBytes(bytes), key)).toBe(true);
    expect(same(repoKeyFromBytes(bytes.toString('base64')), key)).toBe(true);
    expect(JSON.stringify({ key })).toBe('{"key":"[RepoKey]"}');
    expect(inspect(key)).toBe('[RepoKey]');
    thrown(() => repoKeyFromBytes(Buffer.alloc(63)), 'INVALID_ARGUMENT');
  });

  test('ids: SHA-256 without a key, HMAC-SHA256(idKey) with one; deterministic; per key', () => {
    expect(chunkId(null, plain).equals(createHash('sha256').update(plain).digest())).toBe(true);
    expect(id.equals(createHmac('sha256', key.idKey).update(plain).digest())).toBe(true);
    expect(chunkId(key, Buffer.from(plain)).equals(id)).toBe(true);
    expect(id.equals(chunkId(null, plain))).toBe(false);
    expect(chunkId(newRepoKey(), plain).equals(id)).toBe(false);
    expect(chunkId(key, Buffer.from('other content')).equals(id)).toBe(false);
  });

  test('seal/open round trip: nonce || ciphertext || tag, a fresh nonce each time', () => {
    const sealed = sealBlob(key, plain, id);
    expect(sealed.length).toBe(12 + plain.length + 16);
    expect(openBlob(key, sealed, id, 'blob x').equals(plain)).toBe(true);
    const again = sealBlob(key, plain, id);
    expect(again.subarray(0, 12).equals(sealed.subarray(0, 12))).toBe(false);
    expect(openBlob(key, sealBlob(key, Buffer.alloc(0), id), id, 'empty').length).toBe(0);
  });

  test.each([
    ['nonce', 0],
    ['ciphertext', 12 + 5],
    ['tag', -1],
  ])('a flipped byte in the %s is refused REPO_CORRUPT naming the blob', (_part, at) => {
    const sealed = sealBlob(key, plain, id);
    const i = at < 0 ? sealed.length + at : at;
    sealed[i] = (sealed[i] ?? 0) ^ 0x01;
    const err = thrown(() => openBlob(key, sealed, id, 'blob 0123abcd in pack p1'), 'REPO_CORRUPT');
    expect(err.message).toContain('blob 0123abcd in pack p1');
    expect(err.details).toEqual({ kind: 'blob-auth-failed' });
  });

  test('another AAD (a blob moved to another id), another key, or a short blob is refused', () => {
    const sealed = sealBlob(key, plain, id);
    const otherId = Buffer.from(id);
    otherId[31] = (otherId[31] ?? 0) ^ 0x80;
    expect(thrown(() => openBlob(key, sealed, otherId, 'moved'), 'REPO_CORRUPT').details).toEqual({ kind: 'blob-auth-failed' });
    thrown(() => openBlob(newRepoKey(), sealed, id, 'other key'), 'REPO_CORRUPT');
    const short = thrown(() => openBlob(key, sealed.subarray(0, 27), id, 'cut blob'), 'REPO_CORRUPT');
    expect(short.message).toContain('cut blob');
    expect(short.details).toEqual({ kind: 'blob-auth-failed' });
  });

  test('sealed json (a manifest part) opens only for its point', () => {
    const value = { vmName: 'db-01', meta: { note: 'ü' }, diskMeta: { sda: { size: 1 } } };
    const sealed = sealJson(key, value, manifestAad('20261126T081502Z-3f9a1c07d2e4'));
    expect(sealed).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(openJson(key, sealed, manifestAad('20261126T081502Z-3f9a1c07d2e4'), 'manifest')).toEqual(value);
    thrown(() => openJson(key, sealed, manifestAad('20261126T081502Z-000000000000'), 'manifest of point x'), 'REPO_CORRUPT');
    thrown(() => openJson(key, `${sealed.slice(0, 10)}*${sealed.slice(11)}`, manifestAad('x'), 'manifest'), 'REPO_CORRUPT');
  });

  test('key check: HMAC of the repository id; another key is REPO_KEY_WRONG', () => {
    const check = keyCheck(key, REPO_ID);
    expect(Buffer.from(check, 'base64').equals(createHmac('sha256', key.idKey).update(`olvm-backup-key-check:${REPO_ID}`).digest())).toBe(true);
    expect(() => checkKey(key, REPO_ID, check)).not.toThrow();
    thrown(() => checkKey(newRepoKey(), REPO_ID, check), 'REPO_KEY_WRONG');
    thrown(() => checkKey(key, 'another-repository', check), 'REPO_KEY_WRONG');
    thrown(() => checkKey(key, REPO_ID, 'not-a-check'), 'REPO_INVALID');
  });

  test('a worker thread given the 64 key bytes seals what the main thread opens', async () => {
    const modulePath = require.resolve('../../backend/src/repository/repoKey');
    const worker = new Worker(
      `const { parentPort, workerData } = require('worker_threads');
       const k = require(workerData.modulePath);
       const key = k.repoKeyFromBytes(workerData.key);
       const plain = Buffer.from(workerData.plain);
       const id = k.chunkId(key, plain);
       parentPort.postMessage({ id, sealed: k.sealBlob(key, plain, id) });`,
      { eval: true, workerData: { modulePath, key: repoKeyBytes(key), plain } },
    );
    try {
      const msg = await new Promise<{ id: Uint8Array; sealed: Uint8Array }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('worker timed out')), 20_000);
        worker.once('message', (m: { id: Uint8Array; sealed: Uint8Array }) => {
          clearTimeout(timer);
          resolve(m);
        });
        worker.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      expect(Buffer.from(msg.id).equals(id)).toBe(true);
      expect(openBlob(key, msg.sealed, id, 'from worker').equals(plain)).toBe(true);
    } finally {
      await worker.terminate();
    }
  });
});

describe('key files', () => {
  test('create, then unlock with the passphrase: the same master key; the file holds neither secret', async () => {
    const key = newRepoKey();
    const keyId = await createKeyFile(dir, REPO_ID, key, PASS, { ...FAST, label: 'ops' });
    expect(keyId).toMatch(/^[0-9a-f]{16}$/);
    const text = await fs.readFile(keyFile(keyId), 'utf8');
    const json = JSON.parse(text) as { kdf: { N: number; r: number; p: number }; keyId: string; repositoryId: string; label: string; format: string };
    expect(json).toMatchObject({ format: 'olvm-backup-key', keyId, repositoryId: REPO_ID, label: 'ops', kdf: { N: 1024, r: 8, p: 1 } });
    expect(text).not.toContain(PASS);
    expect(text).not.toContain(repoKeyBytes(key).toString('base64').slice(0, 20));
    const unlocked = await unlockRepository(dir, REPO_ID, PASS, { keyCheck: keyCheck(key, REPO_ID) });
    expect(unlocked.keyId).toBe(keyId);
    expect(same(unlocked.key, key)).toBe(true);
    expect(unlocked.problems).toEqual([]);
    expect(await listKeys(dir, REPO_ID)).toEqual([{ keyId, createdAt: expect.any(String) as unknown, label: 'ops' }]);
  });

  test('key files are the account\'s alone (0600 in a 0700 keys/); an unreadable entry in keys/ does not stop the others', async () => {
    const key = newRepoKey();
    const keyId = await createKeyFile(dir, REPO_ID, key, PASS, FAST);
    expect((await fs.stat(keyFile(keyId))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(keyFile(keyId)))).mode & 0o777).toBe(0o700);
    await fs.mkdir(path.join(path.dirname(keyFile(keyId)), '0000000000000000.json'));
    const unlocked = await unlockRepository(dir, REPO_ID, PASS);
    expect(unlocked.keyId).toBe(keyId);
    expect(unlocked.problems.join('\n')).toMatch(/not a file/);
    await fs.rmdir(path.join(path.dirname(keyFile(keyId)), '0000000000000000.json'));
  });

  test('the default scrypt parameters are N=32768 r=8 p=1, recorded in the file', async () => {
    const keyId = await createKeyFile(dir, REPO_ID, newRepoKey(), PASS);
    expect((JSON.parse(await fs.readFile(keyFile(keyId), 'utf8')) as { kdf: unknown }).kdf).toMatchObject({ name: 'scrypt', N: 32768, r: 8, p: 1 });
    expect((await unlockRepository(dir, REPO_ID, PASS)).keyId).toBe(keyId);
  });

  test('a wrong passphrase is REPO_KEY_WRONG without the passphrase in the message; an empty one REPO_KEY_REQUIRED', async () => {
    await createKeyFile(dir, REPO_ID, newRepoKey(), PASS, FAST);
    const wrong = 'Tr0ub4dor&3-wrong';
    const err = await rejection(unlockRepository(dir, REPO_ID, wrong), 'REPO_KEY_WRONG');
    expect(err.message).toBe(`the passphrase opens none of the 1 key(s) of repository ${REPO_ID}`);
    expect(describeError(err)).not.toContain(wrong);
    expect(JSON.stringify(err.details)).not.toContain(wrong);
    await rejection(unlockRepository(dir, REPO_ID, ''), 'REPO_KEY_REQUIRED');
    // a key check that is not this key's: the key found is refused
    await rejection(unlockRepository(dir, REPO_ID, PASS, { keyCheck: keyCheck(newRepoKey(), REPO_ID) }), 'REPO_KEY_WRONG');
  });

  test('an added key opens the same master key as the first', async () => {
    const key = newRepoKey();
    const first = await createKeyFile(dir, REPO_ID, key, PASS, FAST);
    const second = await addKey(dir, REPO_ID, PASS, 'second passphrase', { ...FAST, label: 'offsite' });
    expect(second).not.toBe(first);
    const a = await unlockRepository(dir, REPO_ID, PASS);
    const b = await unlockRepository(dir, REPO_ID, 'second passphrase');
    expect([a.keyId, b.keyId]).toEqual([first, second]);
    expect(same(a.key, key) && same(b.key, key)).toBe(true);
    expect((await listKeys(dir, REPO_ID)).map((k) => k.label)).toEqual([null, 'offsite']);
    await rejection(addKey(dir, REPO_ID, 'nobody knows this', 'x', FAST), 'REPO_KEY_WRONG');
    await rejection(addKey(dir, REPO_ID, PASS, '', FAST), 'INVALID_ARGUMENT');
  });

  test('remove: never the last key; the own key when another remains; a key that is not there is named', async () => {
    const first = await createKeyFile(dir, REPO_ID, newRepoKey(), PASS, FAST);
    const last = await rejection(removeKey(dir, REPO_ID, PASS, first), 'INVALID_ARGUMENT');
    expect(last.message).toContain('last key');
    expect(last.message).toContain('the one this passphrase opens');
    await fs.access(keyFile(first));
    const second = await addKey(dir, REPO_ID, PASS, 'second', FAST);
    await rejection(removeKey(dir, REPO_ID, 'wrong', second), 'REPO_KEY_WRONG');
    expect((await rejection(removeKey(dir, REPO_ID, PASS, '0000000000000000'), 'INVALID_ARGUMENT')).message).toContain('has no key 0000000000000000');
    // the passphrase's own key may go while another remains; afterwards that passphrase opens nothing
    await removeKey(dir, REPO_ID, PASS, first);
    await expect(fs.access(keyFile(first))).rejects.toThrow();
    await rejection(unlockRepository(dir, REPO_ID, PASS), 'REPO_KEY_WRONG');
    expect((await unlockRepository(dir, REPO_ID, 'second')).keyId).toBe(second);
    await rejection(removeKey(dir, REPO_ID, 'second', second), 'INVALID_ARGUMENT');
  });

  test('change passphrase: same key id, new salt; the old passphrase opens nothing, the new one the same key', async () => {
    const key = newRepoKey();
    const keyId = await createKeyFile(dir, REPO_ID, key, PASS, { ...FAST, label: 'ops' });
    const before = JSON.parse(await fs.readFile(keyFile(keyId), 'utf8')) as { kdf: { salt: string }; createdAt: string };
    expect(await changePassphrase(dir, REPO_ID, PASS, 'new one', FAST)).toBe(keyId);
    const after = JSON.parse(await fs.readFile(keyFile(keyId), 'utf8')) as { kdf: { salt: string }; createdAt: string; label: string };
    expect(after.kdf.salt).not.toBe(before.kdf.salt);
    expect(after.createdAt).toBe(before.createdAt);
    expect(after.label).toBe('ops');
    await rejection(unlockRepository(dir, REPO_ID, PASS), 'REPO_KEY_WRONG');
    expect(same((await unlockRepository(dir, REPO_ID, 'new one')).key, key)).toBe(true);
    expect((await fs.readdir(path.join(dir, 'keys'))).length).toBe(1);
  });

  test('hostile key files: huge scrypt N, bad json, another repository — REPO_INVALID naming the file, valid ones still tried', async () => {
    const key = newRepoKey();
    const hostile = await createKeyFile(dir, REPO_ID, key, PASS, FAST);
    const json = JSON.parse(await fs.readFile(keyFile(hostile), 'utf8')) as { kdf: { N: number } };
    json.kdf.N = 2 ** 30;
    await fs.writeFile(keyFile(hostile), JSON.stringify(json));
    const alone = await rejection(unlockRepository(dir, REPO_ID, PASS), 'REPO_INVALID');
    expect(alone.message).toContain(keyFile(hostile));
    expect(alone.message).toContain('scrypt');

    await fs.writeFile(keyFile('00000000000000aa'), '{"format": "olvm-backup-key", ');
    const foreign = await createKeyFile(dir, 'another-repository', key, PASS, FAST);
    const good = await createKeyFile(dir, REPO_ID, key, 'good one', FAST);
    const started = Date.now();
    const unlocked = await unlockRepository(dir, REPO_ID, 'good one');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(unlocked.keyId).toBe(good);
    expect(same(unlocked.key, key)).toBe(true);
    expect(unlocked.problems).toHaveLength(3);
    expect(unlocked.problems.join('\n')).toContain(`${keyFile('00000000000000aa')}: not valid json`);
    expect(unlocked.problems.join('\n')).toContain(`${keyFile(foreign)}: it belongs to repository another-repository`);
    const wrong = await rejection(unlockRepository(dir, REPO_ID, PASS), 'REPO_KEY_WRONG');
    expect(wrong.message).toContain('3 more key file(s) are not valid');
    const listed = await listKeys(dir, REPO_ID);
    expect(listed.filter((k) => k.problem === undefined).map((k) => k.keyId)).toEqual([good]);
    expect(listed.filter((k) => k.problem !== undefined)).toHaveLength(3);
    // a broken file can be removed with a working passphrase
    await removeKey(dir, REPO_ID, 'good one', '00000000000000aa');
    expect(await listKeys(dir, REPO_ID)).toHaveLength(3);
  });
});

describe('the repository identity and the passphrase sources', () => {
  test('readRepoIdentity: the encryption block; a repository without one is not encrypted', async () => {
    const check = keyCheck(newRepoKey(), REPO_ID);
    const encryption = { algorithm: 'aes-256-gcm', idHash: 'hmac-sha256', kdf: 'scrypt', keyCheck: check };
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ version: 2, repositoryId: REPO_ID, encryption }));
    expect(await readRepoIdentity(dir)).toEqual({ repositoryId: REPO_ID, encryption });
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ version: 2, repositoryId: REPO_ID, encryption: null }));
    expect((await rejection(readRepoIdentity(dir), 'REPO_INVALID')).message).toBe(`repository ${dir} is not encrypted: it has no keys`);
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ repositoryId: REPO_ID, encryption: { ...encryption, algorithm: 'rot13' } }));
    await rejection(readRepoIdentity(dir), 'REPO_INVALID');
    await rejection(readRepoIdentity(path.join(dir, 'nothing')), 'REPO_NOT_FOUND');
  });

  test('readPassphrase: the file without trailing newlines, else the environment; neither is REPO_KEY_REQUIRED naming both', async () => {
    const file = path.join(dir, 'pass');
    await fs.writeFile(file, '  spaced secret \n\n', { mode: 0o600 });
    const env = { OLVM_BACKUP_REPO_PASSPHRASE: 'from env' };
    expect(await readPassphrase({ file, env })).toBe('  spaced secret ');
    expect(await readPassphrase({ env })).toBe('from env');
    const none = await rejection(readPassphrase({ env: {} }), 'REPO_KEY_REQUIRED');
    expect(none.message).toContain('--passphrase-file');
    expect(none.message).toContain('OLVM_BACKUP_REPO_PASSPHRASE');
    await fs.writeFile(file, '\n');
    expect((await rejection(readPassphrase({ file, env }), 'REPO_KEY_REQUIRED')).message).toContain('is empty');
    const fresh = await rejection(readPassphrase({ env, purpose: 'new' }), 'INVALID_ARGUMENT');
    expect(fresh.message).toContain('--new-passphrase-file');
    expect(await readPassphrase({ env: { OLVM_BACKUP_REPO_NEW_PASSPHRASE: 'n' }, purpose: 'new' })).toBe('n');
    await rejection(readPassphrase({ file: path.join(dir, 'missing'), env }), 'INVALID_ARGUMENT');
    const warnings: string[] = [];
    await fs.writeFile(file, 'secret', { mode: 0o644 });
    await fs.chmod(file, 0o644);
    await readPassphrase({ file, env, onWarning: (w) => warnings.push(w) });
    expect(warnings.join()).toContain('chmod 600');
    expect(warnings.join()).not.toContain('secret');
  });
});
