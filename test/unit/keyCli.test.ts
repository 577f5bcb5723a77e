import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createKeyFile, keyCheck, newRepoKey, parsePaperKey, repoKeyBytes, unlockRepository, type RepoKey } from '../../backend/src/repository';
import { CLI_MAIN, type CliRun } from '../helpers/cli';

// `olvm-backup key …` in a process of its own against a hand-made encrypted repository
// (config.json with an encryption block, one key file) in a temp dir.
const REPO_ID = '0b7e5d2a-93c1-4f60-8a1e-5d4c3b2a1908';
let dir: string;
let repo: string;
let key: RepoKey;

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OLVM_BACKUP_REPO_')));
    execFile(process.execPath, [CLI_MAIN, ...args], { timeout: 60_000, env: { ...clean, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await cli(args, env);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return r.stdout;
}
async function secret(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, `${text}\n`, { mode: 0o600 });
  return file;
}

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-keycli-'));
  repo = path.join(dir, 'repo');
  await fs.mkdir(repo);
  key = newRepoKey();
  const encryption = { algorithm: 'aes-256-gcm', idHash: 'hmac-sha256', kdf: 'scrypt', keyCheck: keyCheck(key, REPO_ID) };
  const config = { format: 'olvm-backup-repository', version: 2, repositoryId: REPO_ID, chunkSize: 1048576, createdAt: '2026-03-01T00:00:00.000Z', encryption };
  await fs.writeFile(path.join(repo, 'config.json'), JSON.stringify(config, null, 2));
  await createKeyFile(repo, REPO_ID, key, 'first passphrase', { label: 'initial', scrypt: { N: 1024 } });
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('list, add, export --paper, recover --paper: every key opens the same master key', async () => {
  const first = await secret('p1', 'first passphrase');
  const second = await secret('p2', 'second passphrase');
  const third = await secret('p3', 'third passphrase');

  const listed = JSON.parse(await ok(['key', 'list', '--repo', repo, '--json'])) as { keyId: string; label: string }[];
  expect(listed).toEqual([{ keyId: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown, createdAt: expect.any(String) as unknown, label: 'initial' }]);

  const added = JSON.parse(await ok(['key', 'add', '--repo', repo, '--passphrase-file', first, '--new-passphrase-file', second, '--label', 'offsite', '--json'])) as {
    keyId: string;
  };
  const table = await ok(['key', 'list', '--repo', repo]);
  expect(table.split('\n')[0]).toMatch(/^KEY +CREATED +LABEL +PROBLEM$/);
  expect(table).toContain(added.keyId);
  expect(table).toMatch(/offsite/);
  expect((await unlockRepository(repo, REPO_ID, 'second passphrase')).keyId).toBe(added.keyId);

  // the passphrase from the environment this time
  const paper = await ok(['key', 'export', '--paper', '--repo', repo], { OLVM_BACKUP_REPO_PASSPHRASE: 'second passphrase' });
  expect(paper).toContain(`repository: ${REPO_ID}`);
  expect(repoKeyBytes(parsePaperKey(paper)).equals(repoKeyBytes(key))).toBe(true);
  const paperFile = path.join(dir, 'paper.txt');
  // typed back in lower case (the repository id is lower case already)
  await fs.writeFile(paperFile, paper.toLowerCase());

  const recovered = JSON.parse(await ok(['key', 'recover', '--paper', paperFile, '--repo', repo, '--new-passphrase-file', third, '--json'])) as { keyId: string };
  const unlocked = await unlockRepository(repo, REPO_ID, 'third passphrase', { keyCheck: keyCheck(key, REPO_ID) });
  expect(unlocked.keyId).toBe(recovered.keyId);
  expect(repoKeyBytes(unlocked.key).equals(repoKeyBytes(key))).toBe(true);
  expect((JSON.parse(await ok(['key', 'list', '--repo', repo, '--json'])) as unknown[]).length).toBe(3);
});

test('change-passphrase and remove; a wrong passphrase fails without showing it', async () => {
  const first = await secret('p1', 'first passphrase');
  const renewed = await secret('p2', 'renewed passphrase');
  const [{ keyId }] = JSON.parse(await ok(['key', 'list', '--repo', repo, '--json'])) as [{ keyId: string }];

  expect(await ok(['key', 'change-passphrase', '--repo', repo, '--passphrase-file', first, '--new-passphrase-file', renewed])).toBe(
    `changed the passphrase of key ${keyId} of repository ${REPO_ID}\n`,
  );
  const wrong = await cli(['key', 'export', '--paper', '--repo', repo, '--passphrase-file', first]);
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toBe(`olvm-backup: the passphrase opens none of the 1 key(s) of repository ${REPO_ID}\n`);
  expect(wrong.stdout).toBe('');

  const last = await cli(['key', 'remove', keyId, '--repo', repo, '--passphrase-file', renewed]);
  expect(last.code).toBe(1);
  expect(last.stderr).toContain('it is the last key');
  const other = JSON.parse(await ok(['key', 'add', '--repo', repo, '--passphrase-file', renewed, '--json'], { OLVM_BACKUP_REPO_NEW_PASSPHRASE: 'other' })) as {
    keyId: string;
  };
  expect(JSON.parse(await ok(['key', 'remove', keyId, '--repo', repo, '--passphrase-file', renewed, '--json']))).toEqual({ repositoryId: REPO_ID, removed: keyId });
  expect((JSON.parse(await ok(['key', 'list', '--repo', repo, '--json'])) as { keyId: string }[]).map((k) => k.keyId)).toEqual([other.keyId]);
});

test('no passphrase, or a repository that is not encrypted, is refused saying how', async () => {
  const none = await cli(['key', 'export', '--paper', '--repo', repo]);
  expect(none.code).toBe(1);
  expect(none.stderr).toContain('give --passphrase-file FILE or set OLVM_BACKUP_REPO_PASSPHRASE');
  await fs.writeFile(path.join(repo, 'config.json'), JSON.stringify({ format: 'olvm-backup-repository', version: 1, repositoryId: REPO_ID }));
  const plain = await cli(['key', 'list', '--repo', repo]);
  expect(plain.code).toBe(1);
  expect(plain.stderr).toBe(`olvm-backup: repository ${repo} is not encrypted: it has no keys\n`);
});
