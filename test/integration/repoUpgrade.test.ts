import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, type ErrorCode } from '../../backend/src/errors';
import { newPointId, Repository, upgradeRepository, type AuditRecord, type Manifest, type UpgradeReport, type VmIdentity } from '../../backend/src/repository';
import { listIndexFiles, readIndexFile } from '../../backend/src/repository/repoIndex';
import { runCli } from '../helpers/cli';
import { deadPid, runKilledWhen } from '../helpers/crash';
import { readImage } from '../helpers/leasedRead';
import { CS, expectExact, filesUnder, newImage, writeChain, writePoint, type RefPoint } from '../helpers/v1Fixture';

const MiB = 1024 * 1024;
const tmpDirs: string[] = [];
const open: Repository[] = [];

afterAll(async () => {
  for (const r of open) await r.close();
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

async function newV1Repo(): Promise<Repository> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-upgrade-test-'));
  tmpDirs.push(d);
  const repo = await Repository.init(path.join(d, 'repo'), { version: 1, chunkSize: CS });
  open.push(repo);
  return repo;
}

async function reopen(dir: string): Promise<Repository> {
  const r = await Repository.open(dir);
  open.push(r);
  return r;
}

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe(code);
    return err as AppError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await fs.readFile(file, 'utf8')) as T;
const sha256Hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const chunkPath = (dir: string, chunk: Buffer): string => {
  const hex = sha256Hex(chunk);
  return path.join(dir, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
};
const UPGRADING = /is being upgraded to format 2 .*run `olvm-backup repo upgrade --repo .*` to finish/;

const vmA: VmIdentity = { key: 'vm-a', name: 'alpha', id: '11111111-2222-3333-4444-555555555555' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };
const vmC: VmIdentity = { key: 'vm-c', name: 'gamma' };
const hoursAgo = (h: number): Date => new Date(Date.now() - h * 3600_000);

/** Files under points/ and trash/ whose name says they are a format-1 index kept aside, or a temp. */
async function strays(dir: string): Promise<string[]> {
  const all = [...(await filesUnder(path.join(dir, 'points'))), ...(await filesUnder(path.join(dir, 'trash')))];
  return all.filter((f) => f.endsWith('.v1') || path.basename(f).startsWith('.'));
}

/** The repository index has one file, naming every pack on disk, each blob once. */
async function expectTidyIndex(dir: string): Promise<void> {
  const names = await listIndexFiles(dir);
  expect(names).toHaveLength(1);
  const content = await readIndexFile(dir, names[0] as string);
  const onDisk = (await filesUnder(path.join(dir, 'packs'))).map((f) => path.basename(f)).sort();
  expect(content.packs.map((p) => p.name).sort()).toEqual(onDisk);
  const ids = content.packs.flatMap((p) => p.entries.map((e) => e.id.toString('hex')));
  expect(new Set(ids).size).toBe(ids.length);
}

describe('repo upgrade: format 1 to format 2 in place', () => {
  test('every point (and a deleted one in trash/) converts and restores exact; manifests, locks, audit survive; new backups build on old points', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const shared = randomBytes(CS);
    const A = await writeChain(repo, vmA, { sda: newImage(14, 1000, shared), sdb: newImage(5, 0, shared) }, 3, 2, hoursAgo(5));
    const B = await writeChain(repo, vmB, { vda: newImage(10, 0, shared), 'scsi0:0': newImage(3, 512, shared), empty: [] }, 2, 3, hoursAgo(4));
    const C = await writeChain(repo, vmC, { sda: newImage(6, 0, shared) }, 2, 1, hoursAgo(3));
    const lockedUntil = new Date(Date.now() + 365 * 86400_000);
    await repo.extendLock((A[2] as RefPoint).pointId, lockedUntil, { actor: 'test', reason: 'keep' });
    // a deleted point kept in trash/ because a writer of its VM runs
    const writer = await repo.beginPoint({ vm: vmC, pointId: newPointId(new Date()), createdAt: new Date(), parentPointId: (C[1] as RefPoint).pointId });
    expect((await repo.deletePoint((C[0] as RefPoint).pointId, { reason: 'test', actor: 'test' })).deferred).toBe(true);
    await writer.abort();
    await repo.close();

    const chunkFilesBefore = await filesUnder(path.join(dir, 'chunks'));
    const chunkBytes = (await Promise.all(chunkFilesBefore.map(async (f) => (await fs.stat(path.join(dir, 'chunks', f))).size))).reduce((a, b) => a + b, 0);
    const manifestFile = (p: RefPoint, where = 'points'): string => path.join(dir, where, p.pointId, 'manifest.json');
    const live = [...A, ...B, C[1] as RefPoint];
    const before = new Map<string, Manifest>();
    for (const p of live) before.set(p.pointId, await readJson<Manifest>(manifestFile(p)));
    before.set((C[0] as RefPoint).pointId, await readJson<Manifest>(manifestFile(C[0] as RefPoint, 'trash')));
    const configBefore = await readJson<Record<string, unknown>>(path.join(dir, 'config.json'));
    const auditBefore = await fs.readFile(path.join(dir, 'audit.log'), 'utf8');

    // dry run: counts, and nothing written
    const filesBefore = await filesUnder(dir);
    const dry = await upgradeRepository(dir, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, found: 'format-1', version: 1, blockers: [], verify: null });
    expect(dry.freeBytes).toBeGreaterThan(chunkBytes);
    expect(dry.chunks).toMatchObject({ seen: chunkFilesBefore.length, copied: chunkFilesBefore.length, bytesCopied: chunkBytes, alreadyPacked: 0 });
    expect(dry.points).toMatchObject({ seen: 7, converted: 7, problems: [] });
    expect(await filesUnder(dir)).toEqual(filesBefore);

    const report = await upgradeRepository(dir, { packSize: MiB, actor: 'test' });
    expect(report).toMatchObject({ found: 'format-1', version: 2, packSize: MiB });
    expect(report.chunks).toMatchObject({ seen: chunkFilesBefore.length, copied: chunkFilesBefore.length, bytesCopied: chunkBytes, alreadyPacked: 0, corrupt: [] });
    expect(report.points).toMatchObject({ seen: 7, converted: 7, alreadyConverted: 0, damaged: 0, problems: [] });
    expect(report.packs).toBeGreaterThan(3);
    expect(report.verify).toMatchObject({ ok: true, pointsChecked: 6, problems: [] });

    const config = await readJson<Record<string, unknown>>(path.join(dir, 'config.json'));
    expect(config).toEqual({ ...configBefore, version: 2, packSize: MiB, treeFanout: 256, encryption: null });
    expect(await fs.readdir(dir)).not.toContain('chunks');
    expect(await fs.readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await strays(dir)).toEqual([]);
    await expectTidyIndex(dir);
    // manifests: only the index hashes changed (same file names, now format-2 roots)
    for (const [id, old] of before) {
      const where = id === (C[0] as RefPoint).pointId ? 'trash' : 'points';
      const now = await readJson<Manifest>(path.join(dir, where, id, 'manifest.json'));
      expect({ ...now, disks: now.disks.map((d) => ({ ...d, index: { ...d.index, sha256: '' } })) }).toEqual({ ...old, disks: old.disks.map((d) => ({ ...d, index: { ...d.index, sha256: '' } })) });
      for (const d of now.disks) {
        const root = await fs.readFile(path.join(dir, where, id, d.index.file));
        expect(root.subarray(0, 8).toString('latin1')).toBe('OLVBIDX2');
        expect(sha256Hex(root)).toBe(d.index.sha256);
      }
    }
    expect(before.get((B[0] as RefPoint).pointId)?.disks.map((d) => d.index.file)).toContain(`disk-${sha256Hex(Buffer.from('scsi0:0')).slice(0, 16)}.idx`);
    // the audit log: the old records as they were, then the upgrade's
    const audit = await fs.readFile(path.join(dir, 'audit.log'), 'utf8');
    expect(audit.startsWith(auditBefore)).toBe(true);
    const added = audit.slice(auditBefore.length).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    expect(added.map((r) => [r.action, r.reason])).toEqual([
      ['upgrade', 'format 1 to 2: started'],
      ['upgrade', 'format 1 to 2: finished'],
    ]);

    const v2 = await reopen(dir);
    expect(v2.formatVersion).toBe(2);
    await expectExact(v2, live);
    expect((await v2.readManifest((A[2] as RefPoint).pointId)).lockedUntil).toBe(lockedUntil.toISOString());
    await expectCode(v2.deletePoint((A[2] as RefPoint).pointId, { reason: 'x', actor: 'test' }), 'REPO_POINT_LOCKED');

    // new backups: incrementals on old points (their indexes read back as trees), a new VM
    const nextA = await writeChain(v2, vmA, (A[2] as RefPoint).disks, 1, 0, new Date());
    const incA = await writePoint(v2, vmA, A[2] as RefPoint, { sda: [...((A[2] as RefPoint).disks['sda'] as Buffer[])].map((c, i) => (i === 0 ? randomBytes(CS) : c)), sdb: (A[2] as RefPoint).disks['sdb'] as Buffer[] }, { at: new Date(), changed: { sda: [0], sdb: [] } });
    const incB = await writePoint(v2, vmB, B[1] as RefPoint, { ...(B[1] as RefPoint).disks, vda: ((B[1] as RefPoint).disks['vda'] as Buffer[]).map((c, i) => (i === 7 ? randomBytes(CS) : c)) }, { at: new Date(), changed: { vda: [7], 'scsi0:0': [], empty: [] } });
    const fresh = await writePoint(v2, { key: 'vm-d', name: 'delta' }, null, { sda: newImage(4, 10, shared) }, { at: new Date() });
    const m = await v2.readManifest(incA.pointId);
    expect(m.disks.map((d) => [d.device, d.mode, d.chunksNew])).toEqual([
      ['sda', 'incremental', 1],
      ['sdb', 'incremental', 0],
    ]);
    await expectExact(v2, [...nextA, incA, incB, fresh]);
    expect((await v2.verify({ actor: 'test' })).ok).toBe(true);

    // the deleted point in trash/ was converted too: back in points/, it reads exact
    await fs.rename(path.join(dir, 'trash', (C[0] as RefPoint).pointId), path.join(dir, 'points', (C[0] as RefPoint).pointId));
    await expectExact(v2, [C[0] as RefPoint]);
  }, 300_000);

  test('refused while a backup writes, a reader reads or a collection runs; nothing changes', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const [p] = await writeChain(repo, vmA, { sda: newImage(4, 0, randomBytes(CS)) }, 1, 0, hoursAgo(1));
    const files = await filesUnder(dir);
    const writer = await repo.beginPoint({ vm: vmB, pointId: newPointId(new Date()), createdAt: new Date(), parentPointId: null });
    const e1 = await expectCode(upgradeRepository(dir), 'REPO_LOCKED');
    expect(e1.message).toMatch(/in use: a backup of vm vm-b \(pid \d+ on .* since .*\)\. Stop the backup service/);
    expect((await upgradeRepository(dir, { dryRun: true })).blockers).toEqual([expect.stringMatching(/^a backup of vm vm-b/)]);
    await writer.abort();
    const reader = await repo.openPoint((p as RefPoint).pointId, { purpose: 'restore', holder: 'someone' });
    const e2 = await expectCode(upgradeRepository(dir), 'REPO_LOCKED');
    expect(e2.message).toContain(`a restore of point ${(p as RefPoint).pointId} (someone, pid ${process.pid}`);
    await reader.release();
    const gcLock = path.join(dir, 'locks', 'gc.lock');
    const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    await fs.writeFile(gcLock, JSON.stringify({ vmKey: 'gc', pid: process.pid, hostname: os.hostname(), bootId, startedAt: new Date().toISOString(), pointId: null, nonce: 'feedbeef' }));
    expect((await expectCode(upgradeRepository(dir), 'REPO_LOCKED')).message).toMatch(/in use: a garbage collection/);
    await fs.rm(gcLock);
    expect((await readJson<{ version: number }>(path.join(dir, 'config.json'))).version).toBe(1);
    expect((await filesUnder(dir)).filter((f) => !f.startsWith('leases/') && !f.startsWith('locks/') && f !== 'audit.log')).toEqual(files.filter((f) => f !== 'audit.log'));

    await repo.close();
    expect((await upgradeRepository(dir, { packSize: MiB })).verify?.ok).toBe(true);
    // the upgrade's own locks are gone
    const v2 = await reopen(dir);
    await expectExact(v2, [p as RefPoint]);
    expect(await fs.readdir(path.join(dir, 'locks'))).toEqual([]);
  }, 120_000);
});

describe('repo upgrade: damage and interruption', () => {
  test('a corrupt chunk file is reported, quarantined and left out; its point is named and marked; the next backup heals it', async () => {
    const repo = await newV1Repo();
    const dir = repo.dir;
    const shared = randomBytes(CS);
    const A = await writeChain(repo, vmA, { sda: newImage(6, 0, shared) }, 2, 1, hoursAgo(2));
    const [b] = await writeChain(repo, vmB, { vda: newImage(5, 0, shared) }, 1, 0, hoursAgo(1));
    // two points damaged before the upgrade: an index that does not match its manifest, a manifest that is not json
    const [c] = await writeChain(repo, vmC, { sda: newImage(3, 0, shared), sdb: newImage(2, 0, shared) }, 1, 0, hoursAgo(1));
    const [d] = await writeChain(repo, { key: 'vm-d', name: 'delta' }, { sda: newImage(2, 0, shared) }, 1, 0, hoursAgo(1));
    await repo.close();
    const cIndex = path.join(dir, 'points', (c as RefPoint).pointId, 'disk-sdb.idx');
    await fs.chmod(cIndex, 0o644);
    await fs.appendFile(cIndex, Buffer.alloc(32));
    await fs.writeFile(path.join(dir, 'points', (d as RefPoint).pointId, 'manifest.json'), '{"format":');
    const victim = ((b as RefPoint).disks['vda'] as Buffer[])[0] as Buffer; // random, in vm-b's point only
    const file = chunkPath(dir, victim);
    const bytes = await fs.readFile(file);
    bytes.writeUInt8((bytes.readUInt8(bytes.length >> 1) ^ 0xff) & 0xff, bytes.length >> 1);
    await fs.chmod(file, 0o644);
    await fs.writeFile(file, bytes);

    const dry = await runCli(['repo', 'upgrade', '--repo', dir, '--dry-run']);
    expect(dry.code).toBe(0);
    // (the two damaged points in id order: c and d were made in the same second)
    const dryLines = dry.stdout.split('\n');
    expect(dryLines.slice(0, 4).join('\n')).toMatch(/^dry run: repository .* is format 1\nwould copy \d+ chunk files \(.*\) into packs; 0 are in packs already\nwould convert 4 of 5 points \(0 converted already\)\nthe copies need [\d.]+ [KM]iB until the chunk files go at the end; .* are free$/);
    expect(dryLines.slice(4).map((l) => l.replace(/:.*/, '')).sort()).toEqual(['', 'DAMAGED index-corrupt', 'DAMAGED manifest-corrupt']);

    const run = await runCli(['repo', 'upgrade', '--repo', dir, '--pack-size', '1M']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    const hex = sha256Hex(victim);
    expect(run.stdout).toContain(`CORRUPT chunk ${hex}: `);
    expect(run.stdout).toMatch(new RegExp(`DAMAGED chunks-missing: point ${(b as RefPoint).pointId} of vm vm-b, disk vda - 1 chunk\\(s\\) of disk vda are in no pack .*, the first at offset 0`));
    expect(run.stdout).toMatch(new RegExp(`verify: DAMAGED chunk-missing: point ${(b as RefPoint).pointId}, disk vda, offset 0, chunk ${hex}`));
    expect(run.stdout).toContain(`DAMAGED index-corrupt: point ${(c as RefPoint).pointId} of vm vm-c, disk sdb - index of disk sdb in point ${(c as RefPoint).pointId} does not match its manifest: the disk is left as it is\n`);
    expect(run.stdout).toMatch(new RegExp(`DAMAGED manifest-corrupt: point ${(d as RefPoint).pointId} - manifest of point ${(d as RefPoint).pointId} is not valid json: the point is left as it is\\n`));
    const marked = [(b as RefPoint).pointId, (c as RefPoint).pointId, (d as RefPoint).pointId].sort();
    expect(run.stdout).toMatch(new RegExp(`verify: DAMAGED: 5 points, \\d+ chunks checked, 3 problems; marked damaged: ${marked.join(', ')}\\n$`));
    expect((await fs.readdir(path.join(dir, 'quarantine'))).filter((n) => n.startsWith(hex))).toHaveLength(1);

    const v2 = await reopen(dir);
    await expectExact(v2, A);
    await expectCode(readImage(v2, (b as RefPoint).pointId, 'vda'), 'REPO_CORRUPT');
    // the other disk of the point with the damaged index was converted
    await expectExact(v2, [{ ...(c as RefPoint), disks: { sda: (c as RefPoint).disks['sda'] as Buffer[] } }]);
    expect((await v2.damagedPoints()).map((m) => m.pointId)).toEqual(marked);
    await fs.rm(path.join(dir, 'points', (c as RefPoint).pointId), { recursive: true });
    await fs.rm(path.join(dir, 'points', (d as RefPoint).pointId), { recursive: true });
    const actions = (await v2.auditLog()).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['upgrade', 'chunk-quarantine', 'damage-mark']));
    // the content comes back with the next backup that reads it (as in format 1, FORMAT.md §11)
    await writePoint(v2, vmB, null, (b as RefPoint).disks, { at: new Date() });
    const healed = await v2.verify({ actor: 'test' });
    expect(healed).toMatchObject({ ok: true, cleared: [(b as RefPoint).pointId] });
    await expectExact(v2, [b as RefPoint]);
  }, 120_000);

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

describe('repo init --format', () => {
  test('format 2 with a pack size; format 1 is the default and takes no pack size', async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-upgrade-init-'));
    tmpDirs.push(base);
    const two = await runCli(['repo', 'init', '--repo', path.join(base, 'two'), '--format', '2', '--pack-size', '4M', '--chunk-size', '256K', '--json']);
    expect(two).toEqual({ code: 0, stdout: JSON.stringify({ repo: path.join(base, 'two'), format: 2, chunkSize: CS, packSize: 4 * MiB }) + '\n', stderr: '' });
    expect(await readJson<Record<string, unknown>>(path.join(base, 'two', 'config.json'))).toMatchObject({ version: 2, packSize: 4 * MiB, treeFanout: 256, encryption: null });
    const one = await runCli(['repo', 'init', '--repo', path.join(base, 'one')]);
    expect(one.stdout).toBe(`initialized repository ${path.join(base, 'one')} (format 1, chunk size 1048576 bytes)\n`);
    const bad = await runCli(['repo', 'init', '--repo', path.join(base, 'bad'), '--format', '1', '--pack-size', '4M']);
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/pack sizes need repository format 2/);
    const three = await runCli(['repo', 'init', '--repo', path.join(base, 'three'), '--format', '3']);
    expect(three).toMatchObject({ code: 1 });
    expect(three.stderr).toMatch(/--format: '3' is not a repository format \(1 or 2\)/);
  });
});
