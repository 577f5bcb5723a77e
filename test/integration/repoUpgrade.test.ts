import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newPointId, upgradeRepository, type AuditRecord, type Manifest } from '../../backend/src/repository';
import { runCli } from '../helpers/cli';
import { readImage } from '../helpers/leasedRead';
import { chunkPath, cleanUp, expectCode, expectTidyIndex, hoursAgo, MiB, newV1Repo, readJson, reopen, sha256Hex, strays, tempDir, vmA, vmB, vmC } from '../helpers/upgradeChecks';
import { CS, expectExact, filesUnder, newImage, writeChain, writePoint, type RefPoint } from '../helpers/v1Fixture';

afterAll(cleanUp);

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
    // the locks an upgrade that died on another host left: named for what they are
    const otherHost = path.join(dir, 'locks', 'vm-vm-a.lock');
    await fs.writeFile(otherHost, JSON.stringify({ vmKey: 'vm-a', pid: 4242, hostname: 'elsewhere', bootId: null, startedAt: '2026-01-01T00:00:00.000Z', pointId: null, nonce: 'ab' }));
    expect((await expectCode(upgradeRepository(dir), 'REPO_LOCKED')).message).toContain(
      'the lock of vm vm-a held without a point (pid 4242 on elsewhere since 2026-01-01T00:00:00.000Z): an upgrade\'s, running or interrupted there; if it is not running, remove locks/vm-vm-a.lock',
    );
    await fs.rm(otherHost);
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
});

describe('repo init --format', () => {
  test('format 2 with a pack size (the default); format 1 takes no pack size', async () => {
    const base = await tempDir();
    const two = await runCli(['repo', 'init', '--repo', path.join(base, 'two'), '--format', '2', '--pack-size', '4M', '--chunk-size', '256K', '--json']);
    expect(two).toEqual({ code: 0, stdout: JSON.stringify({ repo: path.join(base, 'two'), format: 2, chunkSize: CS, packSize: 4 * MiB, encrypted: false }) + '\n', stderr: '' });
    expect(await readJson<Record<string, unknown>>(path.join(base, 'two', 'config.json'))).toMatchObject({ version: 2, packSize: 4 * MiB, treeFanout: 256, encryption: null });
    const one = await runCli(['repo', 'init', '--repo', path.join(base, 'one'), '--format', '1']);
    expect(one.stdout).toBe(`initialized repository ${path.join(base, 'one')} (format 1, chunk size 1048576 bytes)\n`);
    const dflt = await runCli(['repo', 'init', '--repo', path.join(base, 'default')]);
    expect(dflt.stdout).toBe(`initialized repository ${path.join(base, 'default')} (format 2, chunk size 262144 bytes, pack size 33554432 bytes)\n`);
    const bad = await runCli(['repo', 'init', '--repo', path.join(base, 'bad'), '--format', '1', '--pack-size', '4M']);
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/pack sizes need repository format 2/);
    const three = await runCli(['repo', 'init', '--repo', path.join(base, 'three'), '--format', '3']);
    expect(three).toMatchObject({ code: 1 });
    expect(three.stderr).toMatch(/--format: '3' is not a repository format \(1 or 2\)/);
  });
});
