/**
 * `repo sync` through a remote repository (FORMAT.md §24, §25): local → remote → local over each
 * remote backend (a directory store, and S3 on the Ceph RGW lab) — the copy read back from a
 * fresh cache of the store is the same point, byte-exact, its lock kept; a second run copies
 * nothing; a reader-mode destination is refused. On S3, the CLI: local → s3 killed (SIGKILL) in
 * the middle and run again, then s3 → local through a fresh cache, every point byte-exact.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, syncRepositories, type S3Config, type SyncReport } from '../../backend/src/repository';
import { runCli } from '../helpers/cli';
import { runKilledWhen } from '../helpers/crash';
import { remoteBackends } from '../helpers/repoBackends';
import { initRepo, TEST_PASSPHRASE, V2, V2_ENCRYPTED } from '../helpers/repoFormats';
import { s3Lab } from '../helpers/s3Lab';
import { VM1 } from './syncFixture';
import { CS, expectCode } from './retentionFixture';
import { expectCopied, writeHistory } from './syncFixture';

const DAY_MS = 86_400_000;

describe.each(remoteBackends())('repo sync local → $name → local', (backend) => {
  let dir: string;
  const open: Repository[] = [];
  const keep = <T extends Repository>(r: T): T => (open.push(r), r);
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), `olvm-sync-${backend.name}-`));
  });
  afterAll(async () => {
    await Promise.all(open.map((r) => r.close()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('identical points at each hop, the lock kept; a second run copies nothing; a reader destination is refused', async () => {
    const a = keep(await initRepo(path.join(dir, 'a'), V2_ENCRYPTED, { chunkSize: CS, workers: 2 }));
    const until = new Date(Date.now() + DAY_MS);
    const h = await writeHistory(a, { lock: (n) => (n === 1 ? until : null) });
    const remote = await backend.init(path.join(dir, 'remote'), { chunkSize: CS, version: 2 });
    let r;
    try {
      r = await syncRepositories(a, remote);
      expect([r.ok, r.copied]).toEqual([true, 4]);
      expect(r.to).toBe(remote.remote?.location);
      expect((await syncRepositories(a, remote)).copied).toBe(0);
    } finally {
      await remote.close();
    }
    // read back from the store through a fresh cache, as a reader
    const reader = keep(await backend.open(path.join(dir, 'remote'), { mode: 'reader', cacheDir: path.join(dir, 'reader-cache') }));
    for (const m of h.points) await expectCopied(reader, m, h.images);
    expect((await reader.readManifest(h.points[1]?.pointId ?? '')).lockedUntil).toBe(until.toISOString());
    const back = keep(await initRepo(path.join(dir, 'back'), V2, { chunkSize: CS, workers: 2 }));
    await expectCode(syncRepositories(back, reader), 'INVALID_ARGUMENT');
    const r2 = await syncRepositories(reader, back);
    expect([r2.ok, r2.copied, r2.points.map((p) => p.incremental)]).toEqual([true, 4, [false, true, true, false]]);
    for (const m of h.points) await expectCopied(back, m, h.images);
    expect((await syncRepositories(reader, back)).copied).toBe(0);
  }, 600_000);
});

describe.each(remoteBackends().filter((b) => b.name === 's3'))('olvm-backup repo sync local → $name → local (the CLI)', (backend) => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-sync-cli-s3-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('killed in the middle and run again: every point byte-exact in the store and back', async () => {
    const lab = await s3Lab();
    // the CLI's credentials: the environment (the SDK's standard chain)
    const env = { AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey };
    /** stderr without the SDK's notice about Node versions: nothing of ours. */
    const ours = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('olvm-backup:'));
    const passFile = path.join(dir, 'pass');
    await fs.writeFile(passFile, `${TEST_PASSPHRASE}\n`, { mode: 0o600 });
    const src = path.join(dir, 'a');
    const a = await initRepo(src, V2_ENCRYPTED, { chunkSize: CS, workers: 2 });
    let h;
    try {
      h = await writeHistory(a, { size: 48 });
    } finally {
      await a.close();
    }
    await (await backend.init(path.join(dir, 'made'), { chunkSize: CS, version: 2 })).close();
    const s3 = JSON.parse(await fs.readFile(`${path.join(dir, 'made')}.s3.json`, 'utf8')) as S3Config;
    const url = `s3://${s3.bucket}/${s3.prefix}`;
    const cache = path.join(dir, 'cache');
    const args = ['repo', 'sync', '--from', src, '--to', url, '--to-cache', cache, '--s3-endpoint', lab.endpoint, '--from-passphrase-file', passFile];
    const killed = await runKilledWhen(args, async () => {
      const done = await fs.readdir(path.join(cache, 'points')).catch(() => [] as string[]);
      const staging = await fs.readdir(path.join(cache, 'tmp', VM1.key)).catch(() => [] as string[]);
      return done.length >= 1 && staging.some((x) => !done.includes(x));
    }, 240_000, env);
    expect([killed.signal, ours(killed.stderr)]).toEqual(['SIGKILL', []]);
    const run = await runCli([...args, '--json'], 300_000, { ...env, OLVM_BACKUP_REPO_PASSPHRASE: undefined });
    expect([run.code, ours(run.stderr)]).toEqual([0, []]);
    const report = JSON.parse(run.stdout) as SyncReport;
    expect([report.ok, report.to, report.copied + report.skipped, report.skipped > 0, report.copied > 0]).toEqual([true, url, 4, true, true]);
    // and back, through a fresh cache of the store
    const back = path.join(dir, 'back');
    await (await initRepo(back, V2, { chunkSize: CS })).close();
    const home = await runCli(['repo', 'sync', '--from', url, '--from-cache', path.join(dir, 'cache2'), '--s3-endpoint', lab.endpoint, '--to', back, '--json'], 300_000, env);
    expect([home.code, ours(home.stderr)]).toEqual([0, []]);
    expect((JSON.parse(home.stdout) as SyncReport).copied).toBe(4);
    const b = await Repository.open(back);
    try {
      for (const m of h.points) await expectCopied(b, m, h.images);
    } finally {
      await b.close();
    }
    const again = await runCli([...args, '--json'], 300_000, { ...env, OLVM_BACKUP_REPO_PASSPHRASE: undefined });
    expect((JSON.parse(again.stdout) as SyncReport).copied).toBe(0);
  }, 600_000);
});
