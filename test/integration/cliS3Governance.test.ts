/**
 * The operator's way to delete a point whose Object Lock retention still runs after `points
 * unlock`, through the installed command on the Ceph RGW lab (FORMAT.md §24): on a governance
 * bucket `points delete` is refused (STORE_OBJECT_LOCKED, the message naming
 * --bypass-governance) and succeeds with the option, audited; on a compliance bucket the
 * option changes nothing and the message says the store refuses until the date.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Manifest } from '../../backend/src/repository';
import { initRepo, openRepo } from '../../backend/src/repository/store/open';
import type { S3Config } from '../../backend/src/repository/store/s3Config';
import { runCli, type CliRun } from '../helpers/cli';
import { CS, writePoint } from '../helpers/remotePoints';
import { labCredentialsFile, labS3Config, s3Lab, uniqueBucket, type S3LabEnv } from '../helpers/s3Lab';

jest.setTimeout(240_000);
let lab: S3LabEnv;
let dir: string;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  lab = await s3Lab();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-cli-s3-gov-'));
  env = { AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey, AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_PROFILE: undefined, HOME: path.join(dir, 'home') };
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A repository in a new bucket of `mode` with `n` points locked for an hour (written by the
 *  service's code, in that mode). */
async function lockedPoints(mode: 'governance' | 'compliance', n: number): Promise<{ s3: S3Config; url: string; points: Manifest[] }> {
  const s3 = labS3Config(lab, uniqueBucket(`olvm-${mode.slice(0, 3)}`), await labCredentialsFile(lab, dir), 'repo');
  const repo = await initRepo({ kind: 's3', s3, cacheDir: path.join(dir, `${s3.bucket}-service`) }, { chunkSize: CS, objectLock: mode });
  const points: Manifest[] = [];
  try {
    for (let i = 0; i < n; i++) points.push(await writePoint(repo, randomBytes(2 * CS), null, undefined, new Date(Date.now() + 3_600_000)));
  } finally {
    await repo.close();
  }
  return { s3, url: `s3://${s3.bucket}/repo`, points };
}

/** The operator's cache of the repository at `url`. */
const operatorCache = (url: string): string => path.join(dir, `operator-${url.replace(/[^a-z0-9]/gi, '_')}`);

function cli(url: string, args: string[]): Promise<CliRun> {
  return runCli([...args, '--repo', url, '--s3-endpoint', lab.endpoint, '--cache', operatorCache(url)], 200_000, env);
}

async function storePoints(s3: S3Config): Promise<string[]> {
  const reader = await openRepo({ kind: 's3', s3, cacheDir: path.join(dir, `reader-${randomBytes(4).toString('hex')}`) }, { mode: 'reader' });
  try {
    return (await reader.listPoints()).map((p) => p.pointId);
  } finally {
    await reader.close();
  }
}

test('governance: unlock, then delete is refused naming --bypass-governance; with it the point goes, audited', async () => {
  const { s3, url, points } = await lockedPoints('governance', 2);
  const [p1, p2] = points.map((p) => p.pointId) as [string, string];
  for (const p of [p1, p2]) {
    const u = await cli(url, ['points', 'unlock', '--point', p, '--reason', 'customer asked', '--operator', 'ops-anna']);
    expect({ p, code: u.code }).toEqual({ p, code: 0 });
  }

  const refused = await cli(url, ['points', 'delete', '--point', p1, '--reason', 'customer asked', '--operator', 'ops-anna']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/governance mode: an operator may delete it with 'points delete --bypass-governance'/);

  const done = await cli(url, ['points', 'delete', '--point', p2, '--reason', 'customer asked', '--operator', 'ops-anna', '--bypass-governance']);
  expect({ code: done.code, stdout: done.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`deleted point ${p2}`)) as unknown });
  expect(done.stderr).toMatch(/WARNING: deleting with --bypass-governance/);
  expect(await storePoints(s3)).toEqual([p1]);
  const audit = await fs.readFile(path.join(operatorCache(url), 'audit.log'), 'utf8');
  const records = audit
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { action: string; pointId?: string; actor?: string; details?: Record<string, unknown> });
  expect(records.filter((r) => r.action === 'delete' && r.pointId === p2)).toEqual([
    expect.objectContaining({ actor: 'cli:ops-anna', details: expect.objectContaining({ bypassGovernance: true }) as unknown }),
  ]);
  expect(records.filter((r) => r.action === 'delete' && r.pointId === p1)).toEqual([expect.not.objectContaining({ details: expect.objectContaining({ bypassGovernance: true }) as unknown })]);
});

test('compliance: --bypass-governance changes nothing; the message says the store refuses until the date', async () => {
  const { s3, url, points } = await lockedPoints('compliance', 1);
  const p = (points[0] as Manifest).pointId;
  const u = await cli(url, ['points', 'unlock', '--point', p, '--reason', 'customer asked', '--operator', 'ops-anna']);
  expect({ code: u.code, stderr: u.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^olvm-backup: WARNING: unlocking/) as unknown });
  const refused = await cli(url, ['points', 'delete', '--point', p, '--reason', 'customer asked', '--operator', 'ops-anna', '--bypass-governance']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/compliance mode: nobody can delete it before that date \(--bypass-governance applies to governance mode only\)/);
  expect(await storePoints(s3)).toEqual([p]);
});

test('--bypass-governance on a directory repository is refused', async () => {
  const repoDir = path.join(dir, 'local-repo');
  expect((await runCli(['repo', 'init', '--repo', repoDir], 60_000)).code).toBe(0);
  const r = await runCli(['points', 'delete', '--repo', repoDir, '--point', 'x', '--reason', 'r', '--bypass-governance'], 60_000);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/--bypass-governance: .* is not on object storage/);
});
