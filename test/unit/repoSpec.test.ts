import { mkdtemp, rm, writeFile } from 'fs/promises';
import { tmpdir } from 'os';
import * as path from 'path';
import { defaultCacheDir, repoSpecFrom } from '../../backend/src/cli/repoSpec';
import { isAppError } from '../../backend/src/errors';

// What `--repo` and the S3 flags make of a command line (cli/repoSpec.ts), without a store.
const ENV = { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret', HOME: '/home/op' };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'olvm-repospec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (!isAppError(err, 'INVALID_ARGUMENT')) throw err;
    return err.message;
  }
  throw new Error('accepted');
}

test('a directory stays a directory', async () => {
  expect(await repoSpecFrom({ repo: '/srv/backups' }, ENV)).toEqual({ kind: 'local', dir: '/srv/backups' });
  expect(await repoSpecFrom({ repo: 'relative/dir', s3PathStyle: false }, {})).toEqual({ kind: 'local', dir: 'relative/dir' });
});

test('s3://: path-style with an endpoint, virtual hosts without, us-east-1, the cache under XDG_CACHE_HOME or ~/.cache', async () => {
  const spec = await repoSpecFrom({ repo: 's3://backups/site-a/olvm/', s3Endpoint: 'http://127.0.0.1:7480' }, ENV);
  const cache = process.getuid?.() === 0 ? '/var/cache' : '/home/op/.cache';
  expect(spec).toEqual({
    kind: 's3',
    s3: { endpoint: 'http://127.0.0.1:7480', bucket: 'backups', prefix: 'site-a/olvm', region: 'us-east-1', forcePathStyle: true },
    cacheDir: path.join(cache, 'olvm-backup', 's3', 'backups', 'site-a', 'olvm'),
  });
  const aws = await repoSpecFrom({ repo: 's3://backups', s3Region: 'eu-west-1', cache: 'c' }, ENV);
  expect(aws).toEqual({ kind: 's3', s3: { bucket: 'backups', prefix: '', region: 'eu-west-1', forcePathStyle: false }, cacheDir: path.resolve('c') });
  const vh = await repoSpecFrom({ repo: 's3://backups/p', s3Endpoint: 'https://rgw.example', s3VirtualHost: true }, ENV);
  expect(vh.kind === 's3' && vh.s3.forcePathStyle).toBe(false);
  if (process.getuid?.() !== 0) {
    expect(defaultCacheDir('b', 'x/y', { XDG_CACHE_HOME: '/xdg', HOME: '/h' })).toBe('/xdg/olvm-backup/s3/b/x/y');
    expect(defaultCacheDir('b', '', { XDG_CACHE_HOME: 'not-absolute', HOME: '/h' })).toBe('/h/.cache/olvm-backup/s3/b');
  }
});

test('credentials from a file: its path and profile go to the store config, never a key', async () => {
  const file = path.join(dir, 'creds');
  await writeFile(file, '[ro]\naws_access_key_id = A\naws_secret_access_key = B\n');
  const spec = await repoSpecFrom({ repo: 's3://backups/p', s3Profile: 'ro' }, { HOME: dir, AWS_SHARED_CREDENTIALS_FILE: file });
  expect(spec.kind === 's3' && spec.s3).toMatchObject({ credentialsFile: file, profile: 'ro' });
  expect(JSON.stringify(spec)).not.toMatch(/"A"|"B"/);
});

test('mistakes are named', async () => {
  expect(await refusal(repoSpecFrom({ repo: '/srv/b', s3Endpoint: 'http://x', cache: '/c' }, ENV))).toBe('--s3-endpoint, --cache: only for an s3://BUCKET/PREFIX repository, and --repo /srv/b is a directory');
  expect(await refusal(repoSpecFrom({ repo: 's3://Bad_Bucket/p' }, ENV))).toMatch(/s3:\/\/Bad_Bucket\/p: bucket name "Bad_Bucket" may contain only lowercase letters, digits, dots and hyphens/);
  expect(await refusal(repoSpecFrom({ repo: 's3:///p' }, ENV))).toMatch(/bucket name "" must be 3 to 63 characters long/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/a//b' }, ENV))).toMatch(/the prefix "a\/\/b" must be '\/'-separated names without empty, '\.' or '\.\.' parts/);
  expect(await refusal(repoSpecFrom({ repo: 'https://bucket.s3.amazonaws.com/p' }, ENV))).toMatch(/a repository is a directory or s3:\/\/BUCKET\/PREFIX, not a https:\/\/ URL/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3PathStyle: true, s3VirtualHost: true }, ENV))).toBe('--s3-path-style and --s3-virtual-host: give one of them');
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3Endpoint: 'rgw:7480' }, ENV))).toMatch(/--s3-endpoint: 'rgw:7480' is not an http\(s\) URL/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3Endpoint: 'https://k:s@rgw' }, ENV))).toMatch(/--s3-endpoint: must not hold a user or secret/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3Endpoint: 'https://rgw/bucket' }, ENV))).toMatch(/must be scheme:\/\/host\[:port\] only/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3Ca: path.join(dir, 'nope.pem') }, ENV))).toMatch(/--s3-ca: cannot read .*nope\.pem$/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p', s3Region: 'eu west' }, ENV))).toMatch(/--s3-region: 'eu west' is not a region name/);
  expect(await refusal(repoSpecFrom({ repo: 's3://bucket/p' }, { HOME: dir }))).toMatch(/^no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write an AWS credentials file at .*\.aws\/credentials/);
});
