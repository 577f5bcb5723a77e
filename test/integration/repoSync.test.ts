/**
 * `repo sync` at the repository layer (repository/sync.ts) between real repositories of every
 * pairing — plain and encrypted, format 1 source, another chunk size — without QEMU: each copy
 * is the same point (id, time, VM, metadata, lock) and reads back byte-exact; a second run
 * copies nothing; filters; locks; damaged points; the refusals.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, syncRepositories, type SyncReport } from '../../backend/src/repository';
import { withPoint } from '../helpers/leasedRead';
import { initRepo, openRepo, V1, V2, V2_ENCRYPTED, type RepoFormat } from '../helpers/repoFormats';
import { blobLocation, flipByte } from './packFixture';
import { CS, expectCode } from './retentionFixture';
import { expectCopied, VM1, VM2, writeHistory } from './syncFixture';

const DAY_MS = 86_400_000;

let dir: string;
const open: Repository[] = [];
let seq = 0;

async function newRepo(format: RepoFormat, extra: { chunkSize?: number } = {}): Promise<Repository> {
  const r = await initRepo(path.join(dir, `repo-${seq++}`), format, { chunkSize: CS, workers: 2, ...extra });
  open.push(r);
  return r;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-sync-'));
});
afterAll(async () => {
  await Promise.all(open.map((r) => r.close()));
  await fs.rm(dir, { recursive: true, force: true });
});

const statuses = (r: SyncReport): string[] => r.points.map((p) => `${p.vmKey} ${p.status}`);

describe.each([
  { name: 'v2 → v2', from: V2, to: V2, toChunk: CS },
  { name: 'v2-encrypted → v2 (plain)', from: V2_ENCRYPTED, to: V2, toChunk: CS },
  { name: 'v2 → v2-encrypted', from: V2, to: V2_ENCRYPTED, toChunk: CS },
  { name: 'v1 → v2-encrypted with 1 MiB chunks', from: V1, to: V2_ENCRYPTED, toChunk: 4 * CS },
])('repo sync $name', ({ from: fromFormat, to: toFormat, toChunk }) => {
  test('copies every point as the same point, byte-exact, incrementals as changes; a second run copies nothing', async () => {
    const a = await newRepo(fromFormat);
    const h = await writeHistory(a);
    const b = await newRepo(toFormat, { chunkSize: toChunk });
    const r = await syncRepositories(a, b);
    expect([r.ok, r.copied, r.skipped, r.failed]).toEqual([true, 4, 0, 0]);
    // per VM (key order), oldest first
    expect(r.points.map((p) => p.pointId)).toEqual(h.points.map((p) => p.pointId));
    for (const m of h.points) await expectCopied(b, m, h.images);
    const [p1, p2, p3, q1] = await Promise.all(h.points.map((m) => b.readManifest(m.pointId)));
    expect([p1?.parentPointId, p2?.parentPointId, p3?.parentPointId, q1?.parentPointId]).toEqual([null, h.points[0]?.pointId, h.points[1]?.pointId, null]);
    expect(r.points.map((p) => p.incremental)).toEqual([false, true, true, false]);
    // the incremental wrote only the changed chunks (2 of vda, none of vdb) and stored little
    const [c1, c2] = r.points;
    if (toChunk === CS) expect(c2?.chunksWritten).toBe(2);
    // (1 MiB chunks: the two changed 256 KiB chunks make two changed 1 MiB ones)
    expect(c2?.bytesStored).toBeLessThan((c1?.bytesStored ?? 0) / (toChunk === CS ? 3 : 2));
    // every disk hashed the same on both sides
    expect(c1?.disks?.map((d) => d.device)).toEqual(['vda', 'vdb']);
    // the copies verify in the destination
    const v = await b.verify();
    expect([v.ok, v.pointsChecked]).toEqual([true, 4]);

    const again = await syncRepositories(a, b);
    expect([again.ok, again.copied, again.skipped, again.bytesRead, again.bytesStored]).toEqual([true, 0, 4, 0, 0]);
    expect((await b.listPoints()).length).toBe(4);
  });
});

describe('repo sync: filters, locks, damage, refusals', () => {
  test('--vm and --since select the points; a point whose parent is not there is copied whole', async () => {
    const a = await newRepo(V2);
    const h = await writeHistory(a);
    const b = await newRepo(V2);
    const [p1, p2, p3, q1] = h.points.map((m) => m.pointId);
    const onlyVm2 = await syncRepositories(a, b, { vmKeys: [VM2.key] });
    expect(statuses(onlyVm2)).toEqual([`${VM2.key} copied`]);
    const recent = await syncRepositories(a, b, { vmKeys: [VM1.key], since: new Date(h.points[1]?.createdAt ?? '') });
    expect(recent.points.map((p) => [p.pointId, p.status, p.parentPointId, p.incremental])).toEqual([
      [p2, 'copied', null, false],
      [p3, 'copied', p2, true],
    ]);
    expect((await b.listPoints()).map((p) => p.pointId).sort()).toEqual([p2, p3, q1].sort());
    const rest = await syncRepositories(a, b);
    expect(rest.points.map((p) => [p.pointId, p.status])).toEqual([
      [p1, 'copied'],
      [p2, 'skipped'],
      [p3, 'skipped'],
      [q1, 'skipped'],
    ]);
    for (const m of h.points) await expectCopied(b, m, h.images);
    await expectCode(syncRepositories(a, b, { vmKeys: ['no-such-vm'] }), 'INVALID_ARGUMENT').then((e) => expect(e.message).toMatch(/no restore point of vm no-such-vm.*vm-one, vm-two/));
  });

  test('a running retention lock is copied (and lengthened later), an expired one is not', async () => {
    const a = await newRepo(V2_ENCRYPTED);
    const soon = new Date(Date.now() + 2 * DAY_MS);
    const h = await writeHistory(a, { lock: (n) => (n === 0 ? soon : n === 1 ? new Date(Date.now() - DAY_MS) : null) });
    const [p1, p2] = h.points;
    const b = await newRepo(V2);
    const r = await syncRepositories(a, b);
    expect(r.points.map((p) => p.lockedUntil)).toEqual([soon.toISOString(), null, null, null]);
    await expectCopied(b, p1 as NonNullable<typeof p1>, h.images);
    await expectCopied(b, p2 as NonNullable<typeof p2>, h.images, null);
    await expectCode(b.deletePoint(p1?.pointId ?? '', { reason: 'test', actor: 'test' }), 'REPO_POINT_LOCKED');
    const later = new Date(Date.now() + 5 * DAY_MS);
    await a.extendLock(p1?.pointId ?? '', later);
    const again = await syncRepositories(a, b);
    expect(again.points[0]).toMatchObject({ status: 'skipped', lockExtended: true, lockedUntil: later.toISOString() });
    expect((await b.readManifest(p1?.pointId ?? '')).lockedUntil).toBe(later.toISOString());
  });

  test('a point damaged in the source fails with the reason, the others are copied; a verify mark fails it too', async () => {
    const a = await newRepo(V2);
    const h = await writeHistory(a);
    const q1 = h.points[3]?.pointId ?? '';
    const id = await withPoint(a, q1, async (r) => (await r.index('sda')).digestHex(1));
    const at = await blobLocation(a.dir, id);
    await flipByte(at.file, at.offset + 40);
    const b = await newRepo(V2);
    const r = await syncRepositories(a, b);
    expect([r.ok, r.copied, r.failed]).toEqual([false, 3, 1]);
    expect(r.points[3]).toMatchObject({ pointId: q1, status: 'failed', code: 'REPO_CORRUPT' });
    expect(r.points[3]?.reason).toMatch(new RegExp(`point ${q1}: copying disk sda from .* failed - blob [0-9a-f]{64}: content does not match its id`));
    // nothing of it in the destination, not even staging
    await expectCode(b.readManifest(q1), 'REPO_POINT_NOT_FOUND');
    expect(await fs.readdir(path.join(b.dir, 'tmp', VM2.key)).catch(() => [])).toEqual([]);
    for (const m of h.points.slice(0, 3)) await expectCopied(b, m, h.images);
    // verify marks it; the next sync names the mark
    await a.verify();
    const again = await syncRepositories(a, b);
    expect(again.points.map((p) => p.status)).toEqual(['skipped', 'skipped', 'skipped', 'failed']);
    expect(again.points[3]?.reason).toMatch(new RegExp(`point ${q1} is marked damaged in .* \\(disks sda\\)`));
  });

  test('refuses the same repository at both ends, and a format-1 destination', async () => {
    const a = await newRepo(V2);
    await writeHistory(a, { size: 4 });
    const same = await openRepo(a.dir, V2);
    open.push(same);
    await expectCode(syncRepositories(a, same), 'INVALID_ARGUMENT').then((e) => expect(e.message).toMatch(/same repository/));
    const v1 = await newRepo(V1);
    await expectCode(syncRepositories(a, v1), 'INVALID_ARGUMENT').then((e) => expect(e.message).toMatch(/format-1 repository: repo sync copies into format 2 only.*repo upgrade/));
    expect(await v1.listPoints()).toEqual([]);
  });

  test('a different point under the same id in the destination is left alone and reported', async () => {
    const a = await newRepo(V2);
    const h = await writeHistory(a, { size: 4 });
    const b = await newRepo(V2);
    await syncRepositories(a, b, { vmKeys: [VM2.key] });
    // the destination's copy of q1 replaced by a point of another VM under the same id
    const q1 = h.points[3]?.pointId ?? '';
    const file = path.join(b.dir, 'points', q1, 'manifest.json');
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as { vm: { key: string } };
    m.vm.key = 'someone-else';
    await fs.writeFile(file, JSON.stringify(m));
    const r = await syncRepositories(a, b, { vmKeys: [VM2.key] });
    expect(r.points[0]).toMatchObject({ status: 'failed', code: 'REPO_SYNC_CONFLICT' });
  });
});
