import { spawn, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs, readdirSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, type Lease, type VmIdentity } from '../../backend/src/repository';
import { LeaseKeeper } from '../../backend/src/repository/leases';
import { deleteChecked } from '../../backend/src/repository/retention';
import { rawImageStream } from '../../backend/src/restore';
import { CLI_MAIN, runCli, type CliRun } from '../helpers/cli';
import { ageChunks, chunkFiles, CS, expectCode, readImage, scratchRepositories, writePoint } from './retentionFixture';

const HOUR = 3600_000;
const vmA: VmIdentity = { key: 'vm-a', name: 'alpha' };
const vmB: VmIdentity = { key: 'vm-b', name: 'beta' };

const cli = (...args: string[]): Promise<CliRun> => runCli(args);

function leaseFiles(repo: Repository): string[] {
  return readdirSync(path.join(repo.dir, 'leases')).filter((n) => !n.startsWith('.')).sort();
}

/** Reads a disk through an open reader, every chunk checked. */
async function readAll(r: Awaited<ReturnType<Repository['openPoint']>>, device: string): Promise<Buffer> {
  const index = await r.index(device);
  const parts: Buffer[] = [];
  for (let i = 0; i < index.count; i++) parts.push(await r.readChunk(index.digest(i), index.chunkLength(i)));
  return Buffer.concat(parts);
}

/** A lease file as another process (or host) would have left it. */
async function plantLease(repo: Repository, pointId: string, over: Partial<Lease>): Promise<string> {
  const leaseId = randomBytes(8).toString('hex');
  const now = Date.now();
  const lease = {
    pointId,
    vmKey: null,
    purpose: 'download',
    holder: 'someone else',
    pid: process.pid,
    hostname: os.hostname(),
    bootId: null,
    startedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 600_000).toISOString(),
    ...over,
  };
  const file = path.join(repo.dir, 'leases', `${pointId}.${leaseId}.json`);
  await fs.writeFile(file, JSON.stringify(lease));
  return file;
}

describe('read leases', () => {
  const newRepo = scratchRepositories('olvm-leases-');

  test('openPoint: the lease exists before the manifest is read, the reader reads, release ends it', async () => {
    const repo = await newRepo();
    const image = randomBytes(3 * CS);
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    const r = await repo.openPoint(m.pointId, { purpose: 'restore', holder: 'job 17 (admin@internal)' });
    try {
      expect(r.manifest).toEqual(m);
      const [file] = leaseFiles(repo);
      expect(file).toMatch(new RegExp(`^${m.pointId}\\.[0-9a-f]{16}\\.json$`));
      const lease = JSON.parse(await fs.readFile(path.join(repo.dir, 'leases', file!), 'utf8')) as Lease;
      expect(lease).toMatchObject({ pointId: m.pointId, purpose: 'restore', holder: 'job 17 (admin@internal)', pid: process.pid, hostname: os.hostname() });
      expect(Object.keys(lease).sort()).toEqual(['bootId', 'expiresAt', 'holder', 'hostname', 'pid', 'pointId', 'purpose', 'startedAt']); // written once, whole
      expect(Date.parse(lease.expiresAt) - Date.parse(lease.startedAt)).toBe(600_000);
      expect(await repo.leases()).toEqual([{ ...lease, leaseId: file!.split('.')[1] }]);
      // the index is read once and checked; the same object the next time
      expect(await r.index('vda')).toBe(await r.index('vda'));
      await expectCode(r.index('vdz'), 'REPO_DISK_NOT_FOUND');
      expect((await readAll(r, 'vda')).equals(image)).toBe(true);
    } finally {
      await r.release();
    }
    await r.release(); // idempotent
    expect(leaseFiles(repo)).toEqual([]);
    await expectCode(r.index('vda'), 'INVALID_ARGUMENT');
    await expect(r.readChunk(Buffer.alloc(32), 1)).rejects.toThrow(/released/);
    // an unknown point: not found, and no lease left behind; bad arguments
    await expectCode(repo.openPoint('20200101T000000Z-abcdef', { purpose: 'restore', holder: 'x' }), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.openPoint('../../etc', { purpose: 'restore', holder: 'x' }), 'REPO_POINT_NOT_FOUND');
    await expectCode(repo.openPoint(m.pointId, { purpose: 'copy' as 'restore', holder: 'x' }), 'INVALID_ARGUMENT');
    await expectCode(repo.openPoint(m.pointId, { purpose: 'verify', holder: ' ' }), 'INVALID_ARGUMENT');
    expect(leaseFiles(repo)).toEqual([]);
  });

  test('a leased point: delete refused (purpose and since, not the holder), prune defers it; after the release both go on', async () => {
    const repo = await newRepo();
    const old = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]);
    await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]);
    const r = await repo.openPoint(old.pointId, { purpose: 'download', holder: 'secret-user@internal' });
    const since = (await repo.leases())[0]!.startedAt;
    try {
      const refused = await expectCode(repo.deletePoint(old.pointId, { reason: 'tidy', actor: 'admin' }), 'REPO_POINT_LEASED');
      expect(refused.message).toContain(`being read (download since ${since})`);
      expect(refused.message).not.toContain('secret-user');
      expect((refused as { details?: unknown }).details).toEqual({ pointId: old.pointId, vmKey: 'vm-a', leases: [{ purpose: 'download', since, expiresAt: expect.any(String) }] });

      const dry = await repo.prune({ keepLast: 1 }, { dryRun: true });
      expect(dry).toMatchObject({ removed: [], leased: [old.pointId] });
      expect(dry.points.find((p) => p.pointId === old.pointId)).toMatchObject({ action: 'leased', leased: { purpose: 'download', since } });
      const real = await repo.prune({ keepLast: 1 }, { actor: 'nightly' });
      expect(real).toMatchObject({ removed: [], leased: [old.pointId], deferred: [] });
      expect(real.points.find((p) => p.pointId === old.pointId)).toMatchObject({ action: 'leased', leased: { purpose: 'download', since } });
      expect((await repo.listPoints()).map((p) => p.pointId)).toContain(old.pointId);
      const audit = (await repo.auditLog()).filter((a) => a.action === 'prune');
      expect(audit[0]!.details).toMatchObject({ remove: [], leased: [old.pointId] });
    } finally {
      await r.release();
    }
    expect((await repo.prune({ keepLast: 1 }, { actor: 'nightly' })).removed).toEqual([old.pointId]);
  });

  test('a holder renews its lease while it reads; a holder that stops renewing loses it at its expiry', async () => {
    const repo = await newRepo();
    const m = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }]);
    // the repository's own keeper renews every minute for ten: the same code on a short clock
    const keeper = new LeaseKeeper(repo.dir, { ttlMs: 3_000, renewMs: 200 });
    const lease = await keeper.take(m.pointId, 'verify', 'renewal test');
    const first = lease.info.expiresAt;
    await new Promise((res) => setTimeout(res, 4_000)); // longer than the lifetime
    const now = (await repo.leases(m.pointId))[0];
    expect(now).toMatchObject({ leaseId: lease.leaseId, purpose: 'verify', startedAt: lease.info.startedAt });
    expect(Date.parse(now!.expiresAt)).toBeGreaterThan(Date.parse(first) + 1_500);
    await expectCode(repo.deletePoint(m.pointId, { reason: 'r', actor: 'a' }), 'REPO_POINT_LEASED');
    await keeper.release(lease);
    expect(leaseFiles(repo)).toEqual([]);
    // a lease whose holder stopped renewing (a process stopped, a host gone): dead at expiresAt
    const stale = await plantLease(repo, m.pointId, { hostname: 'far.example', expiresAt: new Date(Date.now() + 1_000).toISOString() });
    await expectCode(repo.deletePoint(m.pointId, { reason: 'r', actor: 'a' }), 'REPO_POINT_LEASED');
    await new Promise((res) => setTimeout(res, 1_200));
    expect(await repo.deletePoint(m.pointId, { reason: 'r', actor: 'a' })).toMatchObject({ deferred: false });
    expect((await repo.gc({ graceMs: 0 })).leasesRemoved).toBe(1);
    await expect(fs.stat(stale)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('leases of gone or expired readers protect nothing and gc removes them; a live one of another host does', async () => {
    const repo = await newRepo();
    const a = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }]);
    const b = await writePoint(repo, vmB, [{ device: 'vda', image: randomBytes(CS) }]);
    // a process of this host that is gone; a reader whose lease ran out; a reader of another host
    const gone = spawnSync('true').pid;
    await plantLease(repo, a.pointId, { pid: gone });
    await plantLease(repo, a.pointId, { hostname: 'far.example', expiresAt: new Date(Date.now() - 1000).toISOString() });
    const far = await plantLease(repo, b.pointId, { hostname: 'far.example', pid: 1, purpose: 'verify' });
    // not a lease: garbage in its place
    await fs.writeFile(path.join(repo.dir, 'leases', `${a.pointId}.${'0'.repeat(16)}.json`), '{"pointId":"x"}');
    expect((await repo.leases()).map((l) => [l.pointId, l.purpose])).toEqual([[b.pointId, 'verify']]);
    await expectCode(repo.deletePoint(b.pointId, { reason: 'r', actor: 'a' }), 'REPO_POINT_LEASED');
    expect(await repo.deletePoint(a.pointId, { reason: 'r', actor: 'a' })).toMatchObject({ deferred: false });
    const gc = await repo.gc({ graceMs: HOUR });
    expect(gc).toMatchObject({ leasesRemoved: 3, leasedPoints: [b.pointId] });
    expect(leaseFiles(repo)).toEqual([path.basename(far)]);
  });

  test('a lease a newer program took for a purpose this one does not know protects its point all the same; one without a purpose is no lease', async () => {
    const repo = await newRepo();
    const a = await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }]);
    await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }]);
    // a live reader of another host, and fields this program does not know (vmKey: earlier programs)
    const newer = await plantLease(repo, a.pointId, { hostname: 'far.example', pid: 1, purpose: 'index-search', vmKey: 'vm-a', shard: 3 } as Partial<Lease>);
    await plantLease(repo, a.pointId, { hostname: 'far.example', pid: 1, purpose: ' ' });
    const leases = await repo.leases(a.pointId);
    expect(leases).toEqual([expect.objectContaining({ pointId: a.pointId, purpose: 'index-search', holder: 'someone else' })]);
    expect(leases[0]).not.toHaveProperty('vmKey');
    const refused = await expectCode(repo.deletePoint(a.pointId, { reason: 'r', actor: 'a' }), 'REPO_POINT_LEASED');
    expect(refused.message).toContain('being read (index-search since');
    expect(await repo.prune({ keepLast: 1 }, { actor: 'nightly' })).toMatchObject({ removed: [], leased: [a.pointId] });
    expect(await repo.gc({ graceMs: HOUR })).toMatchObject({ leasesRemoved: 1, leasedPoints: [a.pointId] });
    expect(leaseFiles(repo)).toEqual([path.basename(newer)]);
  });

  test('a deletion that slipped in between the lease and the manifest read: the point waits in trash/ for the reader; gc of another process keeps its chunks', async () => {
    const repo = await newRepo();
    const image = randomBytes(6 * CS);
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    const r = await repo.openPoint(m.pointId, { purpose: 'restore', holder: 'slow restore' });
    try {
      // as a deletion does once its lease check has passed (the reader's lease came right after):
      // audit record, rename into trash/, then the check after the rename sees the lease
      const del = await deleteChecked(repo.dir, m, { actor: 'admin', reason: 'raced' });
      expect(del).toMatchObject({ deferred: true });
      expect((await repo.listPoints()).map((p) => p.pointId)).toEqual([]);
      expect(await fs.readdir(path.join(repo.dir, 'trash', m.pointId))).toContain('deleted.json');
      // a new reader does not find it
      await expectCode(repo.openPoint(m.pointId, { purpose: 'download', holder: 'late' }), 'REPO_POINT_NOT_FOUND');

      await ageChunks(repo.dir, 2 * HOUR);
      const gc = await cli('gc', '--repo', repo.dir, '--grace', '0', '--json');
      expect([gc.code, gc.stderr]).toEqual([0, '']);
      const report = JSON.parse(gc.stdout) as { chunksRemoved: number; chunksKeptForLeases: number; leasedPoints: string[]; trashKept: string[] };
      expect(report).toMatchObject({ chunksRemoved: 0, chunksKeptForLeases: 6, leasedPoints: [m.pointId], trashKept: [m.pointId] });
      const text = await cli('gc', '--repo', repo.dir, '--grace', '0');
      expect(text.stdout).toContain('1 point(s) being read (restore, download, verify), 6 chunks kept only for them');
      // the reader reads its index from trash/ and every chunk, byte-exact
      expect((await readAll(r, 'vda')).equals(image)).toBe(true);
    } finally {
      await r.release();
    }
    // the reader is done: the entry goes, and its chunks with the next collection
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ trashPurged: [m.pointId], leasedPoints: [], chunksKeptForLeases: 0 });
    expect(await repo.gc({ graceMs: 0 })).toMatchObject({ chunksRemoved: 6 });
    expect(await chunkFiles(repo.dir)).toEqual([]);
  });

  test('verify holds a lease on each point while it verifies it, and none after', async () => {
    const repo = await newRepo();
    const points = [];
    for (let i = 0; i < 3; i++) points.push(await writePoint(repo, i === 2 ? vmB : vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]));
    const seen = new Set<string>();
    const report = await repo.verify({
      repair: false,
      onProgress: () => {
        for (const f of leaseFiles(repo)) seen.add(f.split('.')[0]!);
      },
    });
    expect(report).toMatchObject({ ok: true, pointsChecked: 3, chunksChecked: 6 });
    expect([...seen].sort()).toEqual(points.map((p) => p.pointId).sort());
    expect(leaseFiles(repo)).toEqual([]);
    // a VM's points only; the lease names verify
    seen.clear();
    const one = await repo.verify({ vmKey: 'vm-b', repair: false, onProgress: () => leaseFiles(repo).forEach((f) => seen.add(f.split('.')[0]!)) });
    expect([one.pointsChecked, [...seen]]).toEqual([1, [points[2]!.pointId]]);
    expect(leaseFiles(repo)).toEqual([]);
  });

  test('a raw image read slowly: prune, delete and gc from the CLI leave it alone; it ends byte-exact, then the point can go', async () => {
    const repo = await newRepo();
    const image = randomBytes(8 * CS);
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(2 * CS) }]);
    // garbage of a deleted VM, so that the collection has something to remove
    const g = await writePoint(repo, vmB, [{ device: 'vda', image: randomBytes(3 * CS) }]);
    await repo.deletePoint(g.pointId, { reason: 'garbage', actor: 'test' });
    await ageChunks(repo.dir, 2 * HOUR);

    const stream = await rawImageStream(repo, m.pointId, 'vda', 0, image.length - 1);
    const got: Buffer[] = [];
    const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    got.push((await it.next()).value as Buffer);

    const prune = await cli('prune', '--repo', repo.dir, '--keep-last', '1', '--vm', 'vm-a', '--json');
    expect(prune.code).toBe(0);
    expect(JSON.parse(prune.stdout)).toMatchObject({ removed: [], leased: [m.pointId] });
    const table = await cli('prune', '--repo', repo.dir, '--keep-last', '1', '--vm', 'vm-a');
    expect(table.stdout).toMatch(new RegExp(`${m.pointId} .* being read .*no rule keeps it, but it is being read \\(download since`));
    expect(table.stdout).toContain('1 being read and left for a later prune');
    expect(table.stdout).not.toContain('deferred');
    const del = await cli('points', 'delete', '--repo', repo.dir, '--point', m.pointId, '--reason', 'now');
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/^olvm-backup: cannot delete: restore point \S+ of vm alpha is being read \(download since \S+\); try again once it is done\n$/);
    const listed = JSON.parse((await cli('points', '--repo', repo.dir, '--json')).stdout) as Array<{ pointId: string; leases: Array<{ purpose: string }> }>;
    expect(listed.find((p) => p.pointId === m.pointId)!.leases).toEqual([expect.objectContaining({ purpose: 'download', holder: expect.stringContaining('download of disk vda') })]);
    const gc = await cli('gc', '--repo', repo.dir, '--grace', '0', '--json');
    expect(JSON.parse(gc.stdout)).toMatchObject({ chunksRemoved: 3, leasedPoints: [m.pointId] });

    for (let n = await it.next(); !n.done; n = await it.next()) {
      got.push(n.value);
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(Buffer.concat(got).equals(image)).toBe(true);
    // the stream ended: its lease is gone, and the next prune removes the point
    expect(leaseFiles(repo)).toEqual([]);
    expect(JSON.parse((await cli('prune', '--repo', repo.dir, '--keep-last', '1', '--vm', 'vm-a', '--json')).stdout)).toMatchObject({ removed: [m.pointId], leased: [] });
    await expectCode(readImage(repo, m.pointId, 'vda'), 'REPO_POINT_NOT_FOUND');
  });

  test('a restore to file in another process, stopped mid-way: prune, delete and gc from the CLI leave its point; it finishes byte-exact', async () => {
    const repo = await newRepo();
    const image = randomBytes(256 * CS); // 64 MiB: the restore takes long enough to be stopped in the middle
    const m = await writePoint(repo, vmA, [{ device: 'vda', image }]);
    await writePoint(repo, vmA, [{ device: 'vda', image: randomBytes(CS) }]);
    const out = path.join(path.dirname(repo.dir), 'restored.raw');
    const child = spawn(process.execPath, [CLI_MAIN, 'restore', '--repo', repo.dir, '--point', m.pointId, '--disk', 'vda', '--out', out, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // stopped as soon as its lease exists
      const deadline = Date.now() + 30_000;
      while (leaseFiles(repo).length === 0) {
        if (Date.now() > deadline) throw new Error('the restore took no lease within 30 s');
        await new Promise((res) => setTimeout(res, 2));
      }
      child.kill('SIGSTOP');
      expect(leaseFiles(repo)).toHaveLength(1);
      await expect(fs.stat(out)).rejects.toMatchObject({ code: 'ENOENT' }); // not finished: stopped in the middle
      await ageChunks(repo.dir, 2 * HOUR);

      expect(JSON.parse((await cli('prune', '--repo', repo.dir, '--keep-last', '1', '--json')).stdout)).toMatchObject({ removed: [], leased: [m.pointId] });
      const del = await cli('points', 'delete', '--repo', repo.dir, '--point', m.pointId, '--reason', 'now');
      expect([del.code, del.stderr]).toEqual([1, expect.stringContaining('is being read (restore since')]);
      expect(JSON.parse((await cli('gc', '--repo', repo.dir, '--grace', '0', '--json')).stdout)).toMatchObject({ chunksRemoved: 0, leasedPoints: [m.pointId] });
    } finally {
      child.kill('SIGCONT');
    }
    expect(await exited).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ point: m.pointId, virtualSize: image.length });
    expect((await fs.readFile(out)).equals(image)).toBe(true);
    expect(leaseFiles(repo)).toEqual([]);
  });
});
