import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readCredentialsFile } from '../../backend/src/repository/store/s3Client';
import { bucketNameProblem, parseS3Url } from '../../backend/src/repository/store/stores';
import { expectCode } from '../helpers/expectCode';

/**
 * The pure parts of reaching an S3 store: the `s3://BUCKET/PREFIX` syntax with S3's bucket-name
 * rules, and the AWS-format credentials file (parsed by the product, not the SDK).
 */

describe('parseS3Url', () => {
  it('splits bucket and prefix, trims trailing slashes, and says null for a non-s3 location', () => {
    expect(parseS3Url('s3://my-bucket/prefix/x')).toEqual({ bucket: 'my-bucket', prefix: 'prefix/x' });
    expect(parseS3Url('s3://my-bucket/prefix/x/')).toEqual({ bucket: 'my-bucket', prefix: 'prefix/x' });
    expect(parseS3Url('s3://my.bucket.1')).toEqual({ bucket: 'my.bucket.1', prefix: '' });
    expect(parseS3Url('s3://abc/')).toEqual({ bucket: 'abc', prefix: '' });
    expect(parseS3Url('/var/lib/olvm-backup/repo')).toBeNull();
    expect(parseS3Url('https://bucket/x')).toBeNull();
  });

  it.each([
    ['s3://', 'must be 3 to 63'],
    ['s3://ab/x', 'must be 3 to 63'],
    [`s3://${'a'.repeat(64)}`, 'must be 3 to 63'],
    ['s3://My_Bucket/x', 'lowercase letters'],
    ['s3://-bucket', 'begin and end'],
    ['s3://bucket-', 'begin and end'],
    ['s3://a..b', 'two adjacent dots'],
    ['s3://192.168.1.10/x', 'IP address'],
    ['s3://xn--bucket', 'must not begin'],
    ['s3://bucket-s3alias', 'reserved suffix'],
    ['s3://bucket/a//b', 'prefix'],
    ['s3://bucket/a/../b', 'prefix'],
    ['s3://bucket/./b', 'prefix'],
    ['s3://bucket/a?versionId=1', 'query'],
  ])('refuses %s (INVALID_ARGUMENT: %s)', (url, words) => {
    let caught: unknown;
    try {
      parseS3Url(url);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((caught as Error).message).toContain(words);
  });

  it('bucketNameProblem accepts valid names', () => {
    for (const ok of ['abc', 'olvm-backup-01', 'a.b-c.d', '0bucket9']) expect(bucketNameProblem(ok)).toBeUndefined();
  });
});

describe('readCredentialsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-s3creds-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads [default] and [profile name] sections, ignoring comments and spacing', async () => {
    const file = path.join(dir, 'credentials');
    await fs.writeFile(
      file,
      [
        '# comment',
        '[default]',
        'aws_access_key_id = AKDEFAULT',
        'aws_secret_access_key=secret/with=equals',
        '',
        '; other',
        '[profile   backup]',
        '  AWS_ACCESS_KEY_ID = AKBACKUP  ',
        'aws_secret_access_key = s2',
        'aws_session_token = tok',
        '[empty]',
      ].join('\r\n'),
    );
    expect(readCredentialsFile(file, 'default')).toEqual({ accessKeyId: 'AKDEFAULT', secretAccessKey: 'secret/with=equals' });
    expect(readCredentialsFile(file, 'backup')).toEqual({ accessKeyId: 'AKBACKUP', secretAccessKey: 's2', sessionToken: 'tok' });
    await expectCode(Promise.resolve().then(() => readCredentialsFile(file, 'empty')), 'CONFIG_INVALID');
    await expectCode(Promise.resolve().then(() => readCredentialsFile(file, 'nope')), 'CONFIG_INVALID');
    await expectCode(Promise.resolve().then(() => readCredentialsFile(path.join(dir, 'missing'), 'default')), 'CONFIG_INVALID');
  });
});
