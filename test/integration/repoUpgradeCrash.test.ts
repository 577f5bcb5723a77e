/**
 * The upgrade from format 1 interrupted: SIGKILLed at moments found by watching the repository,
 * stopped and killed at each named step (util/crashPoint.ts), and the states a crash leaves made
 * by hand. Each time the next run goes on, and the last ends with every point exact.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, Repository, upgradeRepository, type Manifest, type UpgradeReport } from '../../backend/src/repository';
import { listIndexFiles } from '../../backend/src/repository/repoIndex';
import { runCli } from '../helpers/cli';
import { deadPid, runKilledAt, runKilledWhen } from '../helpers/crash';
import { chunkPath, cleanUp, expectCode, expectTidyIndex, hoursAgo, MiB, newV1Repo, readJson, reopen, sha256Hex, strays, UPGRADING, vmA, vmB } from '../helpers/upgradeChecks';
import { CS, expectExact, filesUnder, newImage, writeChain, type RefPoint } from '../helpers/v1Fixture';

afterAll(cleanUp);

describe('repo upgrade: SIGKILL at any moment', () => {
  test('SIGKILLed at several moments (after the config change, after some packs, during point conversion), it goes on where it stopped and ends exact', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const shared = randomBytes(CS);
    const points: RefPoint[] = [];
    for (let v = 0; v < 6; v++) points.push(...(await writeChain(repo, { key: `vm-${v}`, name: `vm ${v}` }, { sda: newImage(16, 0, shared) }, 12, 3, hoursAgo(6 - v))));
    await repo.close();
    const ids = points.map((p) => p.pointId).sort();
    const manifestOf = (id: string): Promise<string> => fs.readFile(path.join(dir, 'points', id, 'manifest.json'), 'utf8');
    const original = new Map<string, string>();
    for (const id of ids) original.set(id, await manifestOf(id));
    const packCount = async (): Promise<number> => (await filesUnder(path.join(dir, 'packs'))).length;
    const changed = (id: string) => async (): Promise<boolean> => (await manifestOf(id)) !== original.get(id);
    const killWhen = async (cond: () => Promise<boolean>, what: string): Promise<void> => {
      const r = await runKilledWhen(['repo', 'upgrade', '--repo', dir, '--pack-size', '1M', '--json'], cond);
      expect({ what, signal: r.signal, stderr: r.stderr }).toEqual({ what, signal: 'SIGKILL', stderr: '' });
    };

    await killWhen(async () => (await fs.readFile(path.join(dir, 'config.json'), 'utf8')).includes('"upgrade"'), 'the config change');
    expect((await expectCode(Repository.open(dir), 'REPO_INVALID')).message).toMatch(UPGRADING);
    const cli = await runCli(['points', '--repo', dir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(UPGRADING);

    await killWhen(async () => (await packCount()) >= 8, '8 packs');
    await killWhen(changed(ids[5] as string), 'the conversion of the 6th point');
    await killWhen(changed(ids[40] as string), 'the conversion of the 41st point');
    expect((await expectCode(Repository.open(dir), 'REPO_INVALID')).message).toMatch(UPGRADING);

    const last = await runCli(['repo', 'upgrade', '--repo', dir, '--json']);
    expect(last.stderr).toBe('');
    expect(last.code).toBe(0);
    const report = JSON.parse(last.stdout) as UpgradeReport;
    expect(report).toMatchObject({ found: 'upgrading', version: 2, packSize: MiB });
    expect(report.chunks.corrupt).toEqual([]);
    expect(report.chunks.alreadyPacked).toBeGreaterThan(0);
    expect(report.points).toMatchObject({ seen: ids.length, damaged: 0, problems: [] });
    expect(report.points.alreadyConverted).toBeGreaterThan(0);
    expect(report.points.alreadyConverted + report.points.converted).toBe(ids.length);
    expect(report.verify).toMatchObject({ ok: true, pointsChecked: ids.length });
    expect(await strays(dir)).toEqual([]);
    await expectTidyIndex(dir);
    const v2 = await reopen(dir);
    await expectExact(v2, points);
    const audit = (await v2.auditLog()).filter((r) => r.action === 'upgrade').map((r) => r.reason);
    expect(audit[0]).toBe('format 1 to 2: started');
    expect(audit.filter((r) => r === 'format 1 to 2: resumed')).toHaveLength(4);
    expect(audit[audit.length - 1]).toBe('format 1 to 2: finished');
  }, 600_000);
});

describe('repo upgrade: SIGKILL at each step', () => {
  test('marked, an index file written, an index kept aside, a root written, a manifest converted, the config final: each run goes on, the last ends exact', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const shared = randomBytes(CS);
    const points: RefPoint[] = [];
    for (const vm of [vmA, vmB]) points.push(...(await writeChain(repo, vm, { sda: newImage(12, 7, shared), sdb: newImage(6, 0, shared) }, 4, 2, hoursAgo(vm === vmA ? 2 : 1))));
    await repo.close();
    const args = ['repo', 'upgrade', '--repo', dir, '--pack-size', '1M'];
    const manifests = async (): Promise<Array<{ dir: string; m: Manifest }>> =>
      Promise.all(points.map(async (p) => ({ dir: path.join(dir, 'points', p.pointId), m: await readJson<Manifest>(path.join(dir, 'points', p.pointId, 'manifest.json')) })));
    const head = async (file: string): Promise<string> => (await fs.readFile(file)).subarray(0, 8).toString('latin1');

    await runKilledAt(args, 'upgrade-marked');
    expect((await expectCode(Repository.open(dir), 'REPO_INVALID')).message).toMatch(UPGRADING);
    await runKilledAt(args, 'upgrade-index-written');
    expect((await listIndexFiles(dir)).length).toBe(1);
    await runKilledAt(args, 'upgrade-index-aside');
    // the first point names its format-1 index kept aside, which matches the manifest
    let first = (await manifests())[0] as { dir: string; m: Manifest };
    expect(first.m.disks.map((d) => d.index.file)).toEqual(['disk-sda.idx.v1', 'disk-sdb.idx.v1']);
    for (const d of first.m.disks) expect(sha256Hex(await fs.readFile(path.join(first.dir, d.index.file)))).toBe(d.index.sha256);
    await runKilledAt(args, 'upgrade-root-written');
    first = (await manifests())[0] as { dir: string; m: Manifest };
    expect(first.m.disks.map((d) => d.index.file)).toEqual(['disk-sda.idx.v1', 'disk-sdb.idx.v1']);
    expect(await head(path.join(first.dir, 'disk-sda.idx'))).toBe('OLVBIDX2');
    await runKilledAt(args, 'upgrade-manifest-converted');
    first = (await manifests())[0] as { dir: string; m: Manifest };
    expect(first.m.disks.map((d) => d.index.file)).toEqual(['disk-sda.idx', 'disk-sdb.idx']);
    expect((await fs.readdir(first.dir)).filter((n) => n.endsWith('.v1'))).toHaveLength(2);
    await runKilledAt(args, 'upgrade-config-final');
    // format 2 from here on, the chunk files not yet gone: readable already
    const v2 = await reopen(dir);
    expect(await fs.readdir(dir)).toContain('chunks');
    await expectExact(v2, points);

    const last = await runCli([...args, '--json']);
    expect(last.stderr).toBe('');
    const report = JSON.parse(last.stdout) as UpgradeReport;
    expect(report).toMatchObject({ found: 'format-2', leftoversRemoved: true, verify: { ok: true, pointsChecked: points.length } });
    expect(await fs.readdir(dir)).not.toContain('chunks');
    expect(await strays(dir)).toEqual([]);
    await expectTidyIndex(dir);
    await expectExact(v2, points);
    const reasons = (await v2.auditLog()).filter((r) => r.action === 'upgrade').map((r) => r.reason);
    expect(reasons).toEqual(['format 1 to 2: started', ...Array<string>(5).fill('format 1 to 2: resumed'), 'format 1 to 2: finished']);
  }, 300_000);
});

describe('repo upgrade: the states a crash leaves, made by hand', () => {
  test('index kept aside, root half-swapped, temp files, a crashed collection, a dead writer, an orphan pack; then a crash after the config change', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const shared = randomBytes(CS);
    const A = await writeChain(repo, vmA, { sda: newImage(8, 100, shared), sdb: newImage(3, 0, shared) }, 3, 2, hoursAgo(3));
    const B = await writeChain(repo, vmB, { vda: newImage(6, 0, shared) }, 2, 2, hoursAgo(2));
    await repo.close();
    const [a0, a1] = A as [RefPoint, RefPoint];
    const b0 = B[0] as RefPoint;
    const pdir = (p: RefPoint): string => path.join(dir, 'points', p.pointId);
    // a format-1 collection that crashed with a referenced chunk moved aside (FORMAT.md §14)
    const aside = chunkPath(dir, (a0.disks['sda'] as Buffer[])[0] as Buffer);
    await fs.mkdir(path.join(dir, 'gc-pending'));
    await fs.rename(aside, path.join(dir, 'gc-pending', path.basename(aside)));
    // config.json as the upgrade's step 0 leaves it
    const cfg = await readJson<Record<string, unknown>>(path.join(dir, 'config.json'));
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, version: 2, packSize: MiB, treeFanout: 256, encryption: null, upgrade: { from: 1, startedAt: new Date().toISOString(), actor: 'test' } }));
    expect((await expectCode(Repository.open(dir), 'REPO_INVALID')).message).toMatch(UPGRADING);
    // a0: step (a) done for sda; a1: step (b) done too (F rewritten, the manifest still names F.v1)
    for (const [p, rewritten] of [[a0, false], [a1, true]] as const) {
      await fs.link(path.join(pdir(p), 'disk-sda.idx'), path.join(pdir(p), 'disk-sda.idx.v1'));
      const m = await readJson<Manifest>(path.join(pdir(p), 'manifest.json'));
      (m.disks[0] as Manifest['disks'][number]).index.file = 'disk-sda.idx.v1';
      await fs.writeFile(path.join(pdir(p), 'manifest.json'), JSON.stringify(m));
      if (rewritten) await fs.writeFile(path.join(pdir(p), 'disk-sda.idx.tmp'), randomBytes(80)).then(() => fs.rename(path.join(pdir(p), 'disk-sda.idx.tmp'), path.join(pdir(p), 'disk-sda.idx')));
    }
    // temp files of atomic writes a crash cut short; a dead writer's staging and lock; an orphan pack
    await fs.writeFile(path.join(pdir(b0), '.manifest.json.tmp-1-abcdef01'), '{');
    await fs.writeFile(path.join(pdir(b0), '.disk-vda.idx.tmp-1-abcdef02'), 'x');
    await fs.mkdir(path.join(dir, 'tmp', 'vm-b', newPointId(new Date()), 'chunk-tmp'), { recursive: true });
    const dead = await deadPid();
    await fs.writeFile(path.join(dir, 'locks', 'vm-vm-b.lock'), JSON.stringify({ vmKey: 'vm-b', pid: dead, hostname: os.hostname(), bootId: null, startedAt: new Date().toISOString(), pointId: null, nonce: 'dead' }));
    const orphan = 'ab' + randomBytes(31).toString('hex');
    await fs.mkdir(path.join(dir, 'packs', 'ab'), { recursive: true });
    await fs.writeFile(path.join(dir, 'packs', 'ab', orphan), randomBytes(100));

    const report = await upgradeRepository(dir, { actor: 'test' });
    expect(report).toMatchObject({ found: 'upgrading', version: 2, packSize: MiB, points: { seen: 5, converted: 5, problems: [] }, chunks: { corrupt: [] } });
    expect(report.verify).toMatchObject({ ok: true, pointsChecked: 5 });
    expect(await strays(dir)).toEqual([]);
    expect(await fs.readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await fs.readdir(dir)).not.toContain('gc-pending');
    expect(await filesUnder(path.join(dir, 'packs'))).not.toContain(path.join('ab', orphan));
    await expectTidyIndex(dir);
    for (const p of [a0, a1]) expect((await readJson<Manifest>(path.join(pdir(p), 'manifest.json'))).disks.map((d) => d.index.file)).toEqual(['disk-sda.idx', 'disk-sdb.idx']);
    const v2 = await reopen(dir);
    await expectExact(v2, [...A, ...B]);

    // a crash after the config change, before chunks/ was gone: the next run removes it and verifies
    await fs.mkdir(path.join(dir, 'chunks', '00', '00'), { recursive: true });
    await fs.writeFile(path.join(dir, 'chunks', '00', '00', '0000' + randomBytes(30).toString('hex')), 'x');
    const again = await upgradeRepository(dir, { actor: 'test' });
    expect(again).toMatchObject({ found: 'format-2', version: 2, leftoversRemoved: true, verify: { ok: true, pointsChecked: 5 } });
    expect(await fs.readdir(dir)).not.toContain('chunks');
    const nothing = await runCli(['repo', 'upgrade', '--repo', dir]);
    expect(nothing).toEqual({ code: 0, stdout: `repository ${dir} is format 2 already: nothing to do\n`, stderr: '' });
  }, 120_000);
});
