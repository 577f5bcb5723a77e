/**
 * `olvm-backup repo sync` as the operator runs it (the built CLI in a process of its own): an
 * encrypted source into a plain destination, killed (SIGKILL) with a point staged and again in
 * the middle of the run, then run to the end — every point byte-exact, nothing left behind —
 * and once more, copying nothing; the refusals and a damaged point's exit status.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, type SyncReport } from '../../backend/src/repository';
import { runCli } from '../helpers/cli';
import { runKilledAt, runKilledWhen } from '../helpers/crash';
import { withPoint } from '../helpers/leasedRead';
import { initRepo, V1, V2, V2_ENCRYPTED, TEST_PASSPHRASE } from '../helpers/repoFormats';
import { blobLocation, flipByte } from './packFixture';
import { CS } from './retentionFixture';
import { expectCopied, VM1, VM2, writeHistory, type History } from './syncFixture';

const NO_ENV = { OLVM_BACKUP_REPO_PASSPHRASE: undefined };

let dir: string;
let passFile: string;
let src: string;
let history: History;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-sync-cli-'));
  passFile = path.join(dir, 'pass');
  await fs.writeFile(passFile, `${TEST_PASSPHRASE}\n`, { mode: 0o600 });
  src = path.join(dir, 'a');
  const a = await initRepo(src, V2_ENCRYPTED, { chunkSize: CS, workers: 2 });
  try {
    // 16 MiB disks: a copy takes long enough to be killed in the middle
    history = await writeHistory(a, { size: 64 });
  } finally {
    await a.close();
  }
}, 300_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function withRepo<T>(repoDir: string, fn: (r: Repository) => Promise<T>): Promise<T> {
  const r = await Repository.open(repoDir, { passphrase: TEST_PASSPHRASE, workers: 2 });
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

const entries = (p: string): Promise<string[]> => fs.readdir(p).catch(() => []);

test('killed with a point staged and again mid-run, re-run finishes byte-exact; a further run copies nothing', async () => {
  const dst = path.join(dir, 'b');
  await (await initRepo(dst, V2, { chunkSize: CS })).close();
  const args = ['repo', 'sync', '--from', src, '--to', dst, '--from-passphrase-file', passFile];

  // 1. killed with the first point complete in staging, its manifest written, not yet renamed
  await runKilledAt(args, 'manifest-written');
  expect(await entries(path.join(dst, 'points'))).toEqual([]);
  const staged = await entries(path.join(dst, 'tmp', VM1.key));
  expect(staged).toEqual([history.points[0]?.pointId]);

  // 2. killed while a later point is being copied, some points already in the destination
  const killed = await runKilledWhen(args, async () => {
    const done = await entries(path.join(dst, 'points'));
    const staging = await entries(path.join(dst, 'tmp', VM1.key));
    return done.length >= 1 && staging.some((s) => !done.includes(s));
  });
  expect(killed.signal).toBe('SIGKILL');
  const halfway = await entries(path.join(dst, 'points'));
  expect(halfway.length).toBeGreaterThanOrEqual(1);
  expect(halfway.length).toBeLessThan(4);
  // what is visible is whole
  await withRepo(dst, async (b) => {
    for (const m of history.points.filter((p) => halfway.includes(p.pointId))) await expectCopied(b, m, history.images);
  });

  // 3. the re-run copies the rest
  const run = await runCli([...args, '--json'], 300_000, NO_ENV);
  expect([run.code, run.stderr]).toEqual([0, '']);
  const report = JSON.parse(run.stdout) as SyncReport;
  expect([report.ok, report.copied, report.skipped, report.failed]).toEqual([true, 4 - halfway.length, halfway.length, 0]);
  expect(report.points.filter((p) => p.status === 'skipped').map((p) => p.pointId).sort()).toEqual([...halfway].sort());
  await withRepo(dst, async (b) => {
    for (const m of history.points) await expectCopied(b, m, history.images);
    expect((await b.listPoints()).length).toBe(4);
    // no staging, no live lock or lease left by the killed runs
    expect(await entries(path.join(dst, 'tmp', VM1.key))).toEqual([]);
    expect([await b.readLock(VM1.key), await b.leases()]).toEqual([null, []]);
  });
  await withRepo(src, async (a) => expect(await a.leases()).toEqual([]));

  // 4. idempotent
  const again = await runCli([...args, '--json'], 300_000, NO_ENV);
  expect(again.code).toBe(0);
  const second = JSON.parse(again.stdout) as SyncReport;
  expect([second.copied, second.skipped, second.bytesRead, second.bytesStored]).toEqual([0, 4, 0, 0]);
}, 600_000);

test('--vm and --since on the command line, and the report in words', async () => {
  const dst = path.join(dir, 'c');
  await (await initRepo(dst, V2_ENCRYPTED, { chunkSize: CS })).close();
  const base = ['repo', 'sync', '--from', src, '--to', dst, '--from-passphrase-file', passFile, '--to-passphrase-file', passFile];
  const since = history.points[2]?.createdAt ?? '';
  const run = await runCli([...base, '--vm', VM1.key, '--since', since], 300_000, NO_ENV);
  expect([run.code, run.stderr]).toEqual([0, '']);
  const p3 = history.points[2]?.pointId ?? '';
  expect(run.stdout).toMatch(new RegExp(`^copied  ${p3} \\(vm ${VM1.key}, ${since}\\): whole, read .*, stored .*, verified$`, 'm'));
  expect(run.stdout).toMatch(/^sync .* 1 copied, 0 skipped, 0 failed; /m);
  const rest = await runCli([...base, '--vm', VM2.key, '--vm', VM1.key, '--json'], 300_000, NO_ENV);
  expect((JSON.parse(rest.stdout) as SyncReport).points.map((p) => p.status)).toEqual(['copied', 'copied', 'skipped', 'copied']);
  const bad = await runCli([...base, '--since', 'yesterday-ish'], 60_000, NO_ENV);
  expect([bad.code, bad.stderr]).toEqual([1, "olvm-backup: --since: 'yesterday-ish' is not a date\n"]);
}, 600_000);

test('refusals: same repository, unknown vm, format-1 destination, no passphrase; a damaged point exits 3', async () => {
  const one = path.join(dir, 'v1');
  await (await initRepo(one, V1, { chunkSize: CS })).close();
  const sync = (from: string, to: string, ...more: string[]): ReturnType<typeof runCli> => runCli(['repo', 'sync', '--from', from, '--to', to, '--from-passphrase-file', passFile, ...more], 300_000, NO_ENV);

  const same = await sync(src, src);
  expect(same.code).toBe(1);
  expect(same.stderr).toMatch(/the source and the destination are the same repository/);
  const dst = path.join(dir, 'd');
  await (await initRepo(dst, V2, { chunkSize: CS })).close();
  const unknown = await sync(src, dst, '--vm', 'nobody');
  expect([unknown.code, unknown.stderr]).toEqual([1, `olvm-backup: no restore point of vm nobody in ${src} (its vms: ${VM1.key}, ${VM2.key})\n`]);
  const v1 = await sync(src, one);
  expect(v1.code).toBe(1);
  expect(v1.stderr).toMatch(/is a format-1 repository: repo sync copies into format 2 only/);
  const noPass = await runCli(['repo', 'sync', '--from', src, '--to', dst], 60_000, NO_ENV);
  expect([noPass.code, noPass.stderr]).toEqual([1, expect.stringMatching(/--from .* is encrypted: give --from-passphrase-file FILE/) as unknown]);
  expect(await entries(path.join(dst, 'points'))).toEqual([]);

  // a plain source with VM2's point damaged: the others are copied, the exit status says not all
  const plain = path.join(dir, 'plain');
  const h = await (async () => {
    const a = await initRepo(plain, V2, { chunkSize: CS, workers: 2 });
    try {
      const written = await writeHistory(a, { size: 4 });
      const q1 = written.points[3]?.pointId ?? '';
      const at = await blobLocation(plain, await withPoint(a, q1, async (r) => (await r.index('sda')).digestHex(0)));
      await flipByte(at.file, at.offset + 40);
      return written;
    } finally {
      await a.close();
    }
  })();
  const out = path.join(dir, 'e');
  await (await initRepo(out, V2, { chunkSize: CS })).close();
  const damaged = await runCli(['repo', 'sync', '--from', plain, '--to', out, '--json'], 300_000, NO_ENV);
  expect(damaged.code).toBe(3);
  const report = JSON.parse(damaged.stdout) as SyncReport;
  expect(report.points.map((p) => [p.pointId, p.status, p.code])).toEqual(h.points.map((p, i) => [p.pointId, i === 3 ? 'failed' : 'copied', i === 3 ? 'REPO_CORRUPT' : undefined]));
}, 600_000);
