import { mkdir, mkdtemp, rm, writeFile } from 'fs/promises';
import { tmpdir } from 'os';
import * as path from 'path';
import { findS3Credentials, loadConfig, syncCacheDirOf, type LoadConfigOptions } from '../../backend/src/config';
import { isAppError } from '../../backend/src/errors';

// repository.s3 and protection.requireObjectLock/objectLockMode of the service's config file,
// and where S3 credentials are looked for (config/s3Credentials.ts).
const SECRET_KEY = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'olvm-config-s3-'));
  await writeFile(path.join(dir, 'engine-password'), 'pw\n', { mode: 0o600 });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MINIMAL = `
engine: { url: https://engine.example.com/ovirt-engine, user: olvm-backup@internal, passwordFile: engine-password }
hosts: { qmpDir: qmp }
dataDir: data
`;
/** Credentials in the environment, as the service's unit file would give them. */
const ENV = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: SECRET_KEY, HOME: '/nonexistent' };

async function configFile(yaml: string): Promise<string> {
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, yaml);
  return file;
}

async function failure(opts: LoadConfigOptions): Promise<string> {
  try {
    await loadConfig({ env: {}, ...opts });
  } catch (err) {
    if (!isAppError(err, 'CONFIG_INVALID')) throw err;
    expect(err.message).not.toContain(SECRET_KEY);
    return err.message;
  }
  throw new Error('loadConfig succeeded');
}

test('repository.s3: defaults filled, the cache under the data dir, repository.path pointing at it', async () => {
  const file = await configFile(`${MINIMAL}repository: { s3: { endpoint: "https://rgw.example:7480/", bucket: backups, prefix: /site-a/olvm/ } }\n`);
  const c = await loadConfig({ file, env: ENV });
  const cache = path.join(dir, 'data', 's3-cache');
  expect(c.repository.s3).toEqual({
    endpoint: 'https://rgw.example:7480',
    bucket: 'backups',
    prefix: 'site-a/olvm',
    region: 'us-east-1',
    forcePathStyle: true,
    caFile: undefined,
    credentialsFile: undefined,
    profile: undefined,
    cacheDir: cache,
  });
  expect(c.repository.path).toBe(cache);
  expect(c.protection).toEqual({ minLockDays: 7, requireObjectLock: true, objectLockMode: 'compliance' });
  // AWS itself: virtual-host addressing unless asked
  const aws = await loadConfig({ file: await configFile(`${MINIMAL}repository: { s3: { bucket: backups, region: eu-west-1, cacheDir: cache } }\n`), env: ENV });
  expect(aws.repository.s3).toMatchObject({ endpoint: undefined, prefix: '', region: 'eu-west-1', forcePathStyle: false, cacheDir: path.join(dir, 'cache') });
});

test('a credentials file named in the config, its profile, and the protection settings', async () => {
  await writeFile(path.join(dir, 's3.ini'), `[default]\naws_access_key_id = A\n\n[backup]\naws_access_key_id = AKID\naws_secret_access_key = ${SECRET_KEY}\n`, { mode: 0o600 });
  await writeFile(path.join(dir, 'ca.pem'), 'not checked here\n');
  const file = await configFile(
    `${MINIMAL}repository: { s3: { endpoint: "http://127.0.0.1:7480", bucket: b-1.x, credentialsFile: s3.ini, profile: backup, caFile: ca.pem, forcePathStyle: false } }\n` +
      'protection: { requireObjectLock: false, objectLockMode: governance }\n',
  );
  const c = await loadConfig({ file, env: {} });
  expect(c.repository.s3).toMatchObject({ credentialsFile: path.join(dir, 's3.ini'), profile: 'backup', caFile: path.join(dir, 'ca.pem'), forcePathStyle: false });
  expect(c.protection).toMatchObject({ requireObjectLock: false, objectLockMode: 'governance' });
  expect(c.warnings).toEqual([]);
});

test("sync.s3: policies' s3:// syncTo reach their store with its own keys, else repository.s3's connection; none without either", async () => {
  const own = await loadConfig({ file: await configFile(`${MINIMAL}sync: { s3: { endpoint: "https://offsite.example:7480/", region: eu-1 }, cacheDir: sc }\n`), env: ENV });
  expect(own.sync).toEqual({ s3: { endpoint: 'https://offsite.example:7480', region: 'eu-1', forcePathStyle: true, caFile: undefined, credentialsFile: undefined, profile: undefined }, cacheDir: path.join(dir, 'sc') });
  const inherited = await loadConfig({ file: await configFile(`${MINIMAL}repository: { s3: { endpoint: "http://127.0.0.1:7480", bucket: backups, cacheDir: cache } }\n`), env: ENV });
  expect(inherited.sync.s3).toEqual({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', forcePathStyle: true, caFile: undefined, credentialsFile: undefined, profile: undefined });
  const none = await loadConfig({ file: await configFile(MINIMAL), env: ENV });
  expect(none.sync.s3).toBeNull();
  // one cache per destination, never shared between two stores
  const a = syncCacheDirOf('/c', 'off', 'a/b');
  expect([path.dirname(a), a === syncCacheDirOf('/c', 'off', 'a/b'), a === syncCacheDirOf('/c', 'off', 'a_b')]).toEqual(['/c', true, false]);
  expect(await failure({ file: await configFile(`${MINIMAL}sync: { s3: { secretAccessKey: ${SECRET_KEY} } }\n`), env: ENV })).toMatch(/sync\.s3\.secretAccessKey: credentials must not be in the config file: put them in an AWS credentials file named by sync\.s3\.credentialsFile/);
  expect(await failure({ file: await configFile(`${MINIMAL}sync: { s3: { bucket: b } }\n`), env: ENV })).toMatch(/sync\.s3\.bucket: is not a key of sync\.s3 \(endpoint, region, forcePathStyle, caFile, credentialsFile, profile\)/);
  expect(await failure({ file: await configFile(`${MINIMAL}sync: { s3: { region: eu-1 } }\n`), env: { HOME: path.join(dir, 'home') } })).toMatch(/sync\.s3\.credentialsFile: no S3 credentials/);
});

describe('refused', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['an access key in the YAML', 'repository: { s3: { bucket: backups, accessKeyId: AKID } }', /repository\.s3\.accessKeyId: credentials must not be in the config file: put them in an AWS credentials file named by repository\.s3\.credentialsFile .* or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
    ['a secret in the YAML', `repository: { s3: { bucket: backups, secretAccessKey: ${SECRET_KEY} } }`, /repository\.s3\.secretAccessKey: credentials must not be in the config file/],
    ['any other unknown key', 'repository: { s3: { bucket: backups, bukket: x } }', /repository\.s3\.bukket: is not a key of repository\.s3 \(endpoint, bucket/],
    ['a bucket name S3 refuses', 'repository: { s3: { bucket: My_Bucket } }', /repository\.s3\.bucket: must be a bucket name: 3 to 63 lower-case letters/],
    ['no bucket', 'repository: { s3: { endpoint: "https://rgw.example" } }', /repository\.s3\.bucket: is required/],
    ['credentials in the endpoint', 'repository: { s3: { bucket: backups, endpoint: "https://AKID:secret@rgw.example" } }', /repository\.s3\.endpoint: must not contain a user or secret/],
    ['a bucket in the endpoint', 'repository: { s3: { bucket: backups, endpoint: "https://rgw.example/backups" } }', /repository\.s3\.endpoint: must be scheme:\/\/host\[:port\] only/],
    ['a prefix with ..', 'repository: { s3: { bucket: backups, prefix: a/../b } }', /repository\.s3\.prefix: must not have an empty, "\." or "\.\." segment/],
    ['repository.path beside it', 'repository: { path: /srv/repo, s3: { bucket: backups } }', /repository\.path: a repository on object storage \(repository\.s3\) keeps its local copy in repository\.s3\.cacheDir/],
    ['format 1', 'repository: { format: 1, s3: { bucket: backups } }', /repository\.format: a repository on object storage \(repository\.s3\) is format 2/],
    ['an unknown lock mode', 'repository: { s3: { bucket: backups } }\nprotection: { objectLockMode: strict }', /protection\.objectLockMode: must be one of compliance, governance \(got "strict"\)/],
  ];
  test.each(cases)('%s', async (_what, yaml, expected) => {
    expect(await failure({ file: await configFile(`${MINIMAL}${yaml}\n`), env: ENV })).toMatch(expected);
  });

  test('no credentials anywhere: the message names the variables and the file looked at', async () => {
    const file = await configFile(`${MINIMAL}repository: { s3: { bucket: backups } }\n`);
    const home = path.join(dir, 'home');
    expect(await failure({ file, env: { HOME: home } })).toMatch(
      new RegExp(`repository\\.s3\\.credentialsFile: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write an AWS credentials file at ${home}/\\.aws/credentials \\(ENOENT; AWS_SHARED_CREDENTIALS_FILE names another\\)`),
    );
    expect(await failure({ file: await configFile(`${MINIMAL}repository: { s3: { bucket: backups, credentialsFile: nope.ini } }\n`), env: ENV })).toMatch(/repository\.s3\.credentialsFile: cannot read .*nope\.ini \(ENOENT\)$/);
  });
});

describe('findS3Credentials', () => {
  test('the environment first, then AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials with the profile', async () => {
    expect(await findS3Credentials({ env: { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' } })).toEqual({ source: 'environment' });
    await mkdir(path.join(dir, '.aws'));
    await writeFile(path.join(dir, '.aws', 'credentials'), '# comment\n[default]\naws_access_key_id=a\naws_secret_access_key = b\n[ro]\naws_access_key_id = c\n');
    expect(await findS3Credentials({ env: { HOME: dir } })).toEqual({ source: 'file', file: path.join(dir, '.aws', 'credentials'), profile: 'default' });
    await expect(findS3Credentials({ env: { HOME: dir, AWS_PROFILE: 'ro' } })).rejects.toThrow(/profile \[ro\] of .*credentials lacks aws_secret_access_key$/);
    await expect(findS3Credentials({ env: { HOME: dir }, profile: 'other' })).rejects.toThrow(/has no \[other\] profile$/);
    await expect(findS3Credentials({ env: { HOME: dir, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'x') } })).rejects.toThrow(/write an AWS credentials file at .*\/x \(ENOENT/);
    await expect(findS3Credentials({ env: { AWS_ACCESS_KEY_ID: 'a', HOME: dir } })).rejects.toThrow(/AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both/);
  });
});
