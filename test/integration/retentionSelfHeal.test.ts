import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planDisk } from '../../backend/src/backup/chainCheck';
import type { BlockDevice } from '../../backend/src/qmp';
import { Repository, type Manifest, type VmIdentity } from '../../backend/src/repository';
import { CS, expectCode, mutate, readImage, writePoint } from './retentionFixture';

const vm: VmIdentity = { key: 'vm-heal', name: 'heal' };

/** The disk as QEMU would list it for the next backup: same node, its bitmap intact. */
function device(m: Manifest, deviceId: string): BlockDevice {
  const d = m.disks.find((x) => x.device === deviceId)!;
  return {
    deviceId,
    qdevPath: `/machine/peripheral/${deviceId}/virtio-backend`,
    nodeName: d.node,
    format: d.format,
    virtualSize: d.virtualSize,
    readOnly: false,
    filename: `/images/${deviceId}.qcow2`,
    canPersistBitmaps: true,
    bitmaps: [{ name: d.bitmap, dirtyBytes: CS, granularity: 65536, recording: true, busy: false, persistent: true, inconsistent: false }],
  };
}

function chunkFile(repo: Repository, hex: string): string {
  return path.join(repo.dir, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
}

describe('verify marks damaged points, quarantines bad chunks, and the next backup heals them', () => {
  let dir: string;
  let repo: Repository;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-selfheal-'));
    // format 1: chunk files are damaged by hand here (format 2's packs: verifyPacks.test.ts)
    repo = await Repository.init(path.join(dir, 'repo'), { version: 1, chunkSize: CS, workers: 2 });
  });
  afterAll(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('corrupt chunk → marks on every point using it → full of the damaged disk only → verify clean, old points restore exactly', async () => {
    const vda1 = randomBytes(6 * CS);
    const vdb1 = randomBytes(4 * CS);
    const p1 = await writePoint(repo, vm, [
      { device: 'vda', image: vda1 },
      { device: 'vdb', image: vdb1 },
    ]);
    const vda2 = mutate(vda1, [4]);
    const vdb2 = mutate(vdb1, [2]);
    const p2 = await writePoint(
      repo,
      vm,
      [
        { device: 'vda', image: vda2, dirty: [4] },
        { device: 'vdb', image: vdb2, dirty: [2] },
      ],
      { parent: p1 },
    );
    // vda's chunk 1 is shared by p1 and p2 (carried over): flip a byte of its file
    const bad = (await repo.readIndex(p2.pointId, 'vda')).digestHex(1);
    const file = chunkFile(repo, bad);
    await fs.chmod(file, 0o644);
    const raw = await fs.readFile(file);
    raw[raw.length >> 1]! ^= 0x20;
    await fs.writeFile(file, raw);

    const v1 = await repo.verify({ actor: 'verify-job' });
    expect(v1.ok).toBe(false);
    expect(v1.points).toEqual([
      { pointId: p1.pointId, vmKey: vm.key, status: 'damaged', damagedDevices: ['vda'], problems: 1 },
      { pointId: p2.pointId, vmKey: vm.key, status: 'damaged', damagedDevices: ['vda'], problems: 1 },
    ]);
    expect(v1.quarantined).toEqual([bad]);
    expect(v1.marked).toEqual([p1.pointId, p2.pointId]);
    expect(v1.cleared).toEqual([]);
    // the bad file left chunks/ for quarantine/: "already stored" is now false for that content
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const q = await fs.readdir(path.join(repo.dir, 'quarantine'));
    expect(q).toHaveLength(1);
    expect(q[0]!.startsWith(`${bad}.`)).toBe(true);
    const marks = await repo.damagedPoints();
    expect(marks.map((m) => [m.pointId, m.devices])).toEqual([
      [p1.pointId, ['vda']],
      [p2.pointId, ['vda']],
    ]);
    expect(marks[0]!.problems).toEqual([{ device: 'vda', chunk: bad, offset: CS, kind: 'chunk-corrupt' }]);
    await expectCode(readImage(repo, p1.pointId, 'vda'), 'REPO_CORRUPT');
    // the disk without damage still restores
    expect((await readImage(repo, p2.pointId, 'vdb')).equals(vdb2)).toBe(true);

    // a second verify: the chunk is now missing; the marks stay (first marking time kept)
    const v2 = await repo.verify();
    expect(v2.problems.map((p) => p.kind)).toEqual(['chunk-missing', 'chunk-missing']);
    expect(v2.marked).toEqual([]);
    expect((await repo.damageOf(p2.pointId))?.markedAt).toBe(marks[1]!.markedAt);

    // the next backup of the VM: its parent p2 is marked, so vda (damaged) goes full, vdb stays incremental
    const damage = await repo.damageOf(p2.pointId);
    expect(planDisk(device(p2, 'vda'), p2, { forceFull: false, parentDamage: damage })).toMatchObject({ mode: 'full', reason: 'parent-damaged' });
    expect(planDisk(device(p2, 'vdb'), p2, { forceFull: false, parentDamage: damage })).toMatchObject({ mode: 'incremental' });
    expect(planDisk(device(p2, 'vda'), p2, { forceFull: false, parentDamage: null })).toMatchObject({ mode: 'incremental' });
    // a mark for the whole point (unreadable manifest) sends every disk full
    expect(planDisk(device(p2, 'vdb'), p2, { forceFull: false, parentDamage: { devices: null } })).toMatchObject({ reason: 'parent-damaged' });

    const vda3 = mutate(vda2, [5]); // the guest changed one more chunk; chunk 1 still holds the old content
    const p3 = await writePoint(
      repo,
      vm,
      [
        { device: 'vda', image: vda3, full: 'parent-damaged' },
        { device: 'vdb', image: vdb2, dirty: [] },
      ],
      { parent: p2 },
    );
    expect(p3.disks.map((d) => [d.device, d.mode, d.reason])).toEqual([
      ['vda', 'full', 'parent-damaged'],
      ['vdb', 'incremental', 'incremental'],
    ]);
    // the full re-read every chunk: chunk 1 was stored again, chunk 5 is new, the rest were still there
    expect(p3.disks[0]).toMatchObject({ chunksNew: 2, chunksReused: 4 });

    const v3 = await repo.verify({ actor: 'verify-job' });
    expect(v3.ok).toBe(true);
    expect(v3.points.map((p) => p.status)).toEqual(['ok', 'ok', 'ok']);
    expect(v3.cleared).toEqual([p1.pointId, p2.pointId]);
    expect(await repo.damagedPoints()).toEqual([]);
    expect((await readImage(repo, p1.pointId, 'vda')).equals(vda1)).toBe(true);
    expect((await readImage(repo, p2.pointId, 'vda')).equals(vda2)).toBe(true);
    expect((await readImage(repo, p3.pointId, 'vda')).equals(vda3)).toBe(true);

    const log = (await repo.auditLog()).map((r) => [r.action, r.actor, r.pointId]);
    expect(log).toEqual([
      ['chunk-quarantine', 'verify-job', null],
      ['damage-mark', 'verify-job', p1.pointId],
      ['damage-mark', 'verify-job', p2.pointId],
      ['damage-clear', 'verify-job', p1.pointId],
      ['damage-clear', 'verify-job', p2.pointId],
    ]);
  });

  test('repair: false only reports; deleting a marked point drops its mark; a missing index marks the disk', async () => {
    const m = await writePoint(repo, { key: 'vm-x', name: 'x' }, [{ device: 'sda', image: randomBytes(2 * CS) }]);
    await fs.rm(path.join(repo.dir, 'points', m.pointId, m.disks[0]!.index.file));
    const quiet = await repo.verify({ pointId: m.pointId, repair: false });
    expect(quiet.points).toEqual([{ pointId: m.pointId, vmKey: 'vm-x', status: 'damaged', damagedDevices: ['sda'], problems: 1 }]);
    expect(await repo.damageOf(m.pointId)).toBeNull();
    const r = await repo.verify({ pointId: m.pointId });
    expect(r.marked).toEqual([m.pointId]);
    expect((await repo.damageOf(m.pointId))?.problems).toEqual([{ device: 'sda', chunk: null, offset: null, kind: 'index-missing' }]);
    await repo.deletePoint(m.pointId, { reason: 'damaged beyond repair', actor: 'x' });
    expect(await repo.damageOf(m.pointId)).toBeNull();
    expect((await repo.damagedPoints()).map((d) => d.pointId)).not.toContain(m.pointId);
  });
});
