import { mkdtemp, rm, writeFile } from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { runCli, type CliRun } from '../helpers/cli';

// `--repo s3://…` and the S3 flags on the command line, as an operator meets them, with no
// store anywhere: every repository command takes them, and each mistake is one line naming it.
let dir: string;
let home: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'olvm-cli-s3-'));
  home = path.join(dir, 'home');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** No AWS_* variable of this process leaks in; HOME has no ~/.aws. */
const NO_CREDS: Record<string, string | undefined> = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_PROFILE: undefined };
const CREDS = { ...NO_CREDS, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret-example' };
const cli = (args: string[], env: Record<string, string | undefined> = CREDS): Promise<CliRun> => runCli(args, 60_000, { HOME: home, XDG_CACHE_HOME: undefined, ...env });

function expectOneLineError(r: CliRun, pattern: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^olvm-backup: /);
  expect(lines[0]).toMatch(pattern);
}

/** Every command that opens a repository (the subcommand path). */
const REPOSITORY_COMMANDS = [
  ['repo', 'init'],
  ['repo', 'info'],
  ['backup'],
  ['points'],
  ['points', 'delete'],
  ['points', 'lock'],
  ['points', 'unlock'],
  ['points', 'damaged'],
  ['show'],
  ['restore'],
  ['export'],
  ['boot-check'],
  ['verify'],
  ['prune'],
  ['gc'],
  ['audit'],
  ['catalog', 'rebuild'],
  ['key', 'list'],
  ['key', 'add'],
  ['key', 'remove'],
  ['key', 'change-passphrase'],
  ['key', 'export'],
  ['key', 'recover'],
];

test('every repository command takes --repo s3://… and the S3 flags, none of them a credential', async () => {
  for (const c of REPOSITORY_COMMANDS) {
    const help = await cli([...c, '--help']);
    expect({ command: c.join(' '), code: help.code }).toEqual({ command: c.join(' '), code: 0 });
    for (const flag of ['--repo <location>', 's3://BUCKET/PREFIX', '--s3-endpoint <url>', '--s3-ca <file>', '--s3-region <region>', '--s3-path-style', '--s3-virtual-host', '--s3-profile <name>', '--cache <dir>']) {
      if (!help.stdout.includes(flag)) throw new Error(`${c.join(' ')} --help lacks ${flag}`);
    }
    expect(help.stdout).not.toMatch(/--s3-(access|secret)|--aws-/);
  }
});

test('mistakes on the command line: one line each, exit 1', async () => {
  const repoDir = path.join(dir, 'repo');
  expectOneLineError(await cli(['points', '--repo', repoDir, '--s3-endpoint', 'http://127.0.0.1:7480']), /--s3-endpoint: only for an s3:\/\/BUCKET\/PREFIX repository, and --repo .*repo is a directory$/);
  expectOneLineError(await cli(['show', '--repo', 's3://Backups_1/p', '--point', 'x']), /bucket name "Backups_1" may contain only lowercase letters/);
  expectOneLineError(await cli(['restore', '--repo', 'https://rgw/backups', '--point', 'x', '--disk', 'd', '--out', path.join(dir, 'o')]), /not a https:\/\/ URL/);
  expectOneLineError(await cli(['verify', '--repo', 's3://backups/p', '--s3-path-style', '--s3-virtual-host']), /--s3-path-style and --s3-virtual-host: give one of them$/);
  expectOneLineError(await cli(['gc', '--repo', 's3://backups/p', '--s3-endpoint', 'rgw.example:7480']), /--s3-endpoint: 'rgw\.example:7480' is not an http\(s\) URL/);
  expectOneLineError(await cli(['audit', '--repo', 's3://backups/p', '--s3-ca', path.join(dir, 'nope.pem')]), /--s3-ca: cannot read .*nope\.pem - ENOENT/);
  // no credentials: the variables and the file that were looked at
  expectOneLineError(
    await cli(['show', '--repo', 's3://backups/p', '--s3-endpoint', 'http://127.0.0.1:7480', '--point', 'x'], NO_CREDS),
    new RegExp(`no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write an AWS credentials file at ${home}/\\.aws/credentials \\(ENOENT; AWS_SHARED_CREDENTIALS_FILE names another\\) with \\[default\\]`),
  );
  expectOneLineError(await cli(['show', '--repo', 's3://backups/p', '--point', 'x'], { ...NO_CREDS, AWS_ACCESS_KEY_ID: 'AKID' }), /AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both$/);
  // repo init: --object-lock is for s3, and s3 holds format 2 only
  expectOneLineError(await cli(['repo', 'init', '--repo', repoDir, '--object-lock', 'compliance']), /--object-lock: only for an s3:\/\/BUCKET\/PREFIX repository, and --repo .*repo is a directory$/);
  expectOneLineError(await cli(['repo', 'init', '--repo', 's3://backups/p', '--object-lock', 'strict']), /--object-lock: 'strict' is not one of compliance, governance, off$/);
  expectOneLineError(await cli(['repo', 'init', '--repo', 's3://backups/p', '--format', '1']), /--format 1: only a format 2 repository can live on object storage$/);
  expectOneLineError(await cli(['repo', 'upgrade', '--repo', 's3://backups/p']), /repo upgrade converts a format-1 repository in a directory; s3:\/\/backups\/p is on object storage/);
  await writeFile(path.join(dir, 'paper'), 'not read: refused before\n');
  expectOneLineError(await cli(['key', 'recover', '--repo', 's3://backups/p', '--paper', path.join(dir, 'paper')]), /s3:\/\/backups\/p: key recover works on a directory/);
  expectOneLineError(await cli(['key', 'list', '--repo', repoDir, '--s3-region', 'eu-west-1']), /--s3-region: only for an s3:\/\/BUCKET\/PREFIX repository/);
});
