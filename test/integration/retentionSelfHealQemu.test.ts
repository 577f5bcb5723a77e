import { promises as fs } from 'fs';
import * as path from 'path';
import { V1 } from '../helpers/repoFormats';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';

const MiB = 1 << 20;
const D0 = 'virtio-disk0';

/** The same self-healing as retentionSelfHeal.test.ts, with the product's real backup of a
 *  running QEMU VM deciding the full (runBackup → planDisk → parent-damaged). */
describe('self-healing through a real backup', () => {
  let f: BackupFixture;
  beforeAll(async () => {
    // format 1: a chunk file is damaged by hand (format 2's packs: verifyPacks.test.ts)
    f = await BackupFixture.create('selfheal', [{ id: D0, format: 'qcow2', size: 8 * MiB }], V1);
  });
  afterAll(async () => f?.dispose());

  test('a corrupt chunk marks both points; the next backup is a full that stores it again; both restore exactly', async () => {
    await f.vm.writeRandom(D0, 0, 3 * MiB);
    const full = await f.backup();
    const img1 = f.vm.snapshot(D0);
    await f.vm.writeRandom(D0, 5 * MiB, 64 * 1024);
    const inc = await f.backup();
    expect(inc.manifest.disks[0]).toMatchObject({ mode: 'incremental' });
    const img2 = f.vm.snapshot(D0);

    // chunk 0 (carried over into the incremental) goes bad on disk
    const hex = (await f.repo.readIndex(inc.manifest.pointId, D0)).digestHex(0);
    const file = path.join(f.repo.dir, 'chunks', hex.slice(0, 2), hex.slice(2, 4), hex);
    await fs.chmod(file, 0o644);
    const raw = await fs.readFile(file);
    raw[7]! ^= 0x01;
    await fs.writeFile(file, raw);
    const bad = await f.repo.verify();
    expect([...bad.marked].sort()).toEqual([full.manifest.pointId, inc.manifest.pointId].sort());
    expect(bad.quarantined).toEqual([hex]);

    await f.vm.writeRandom(D0, 6 * MiB, 64 * 1024);
    const heal = await f.backup();
    expect(heal.manifest.disks[0]).toMatchObject({ mode: 'full', reason: 'parent-damaged' });
    expect(heal.manifest.disks[0]!.chunksNew).toBeGreaterThanOrEqual(2); // chunk 0 again, chunk 6 new
    const img3 = f.vm.snapshot(D0);

    const good = await f.repo.verify();
    expect(good.ok).toBe(true);
    expect([...good.cleared].sort()).toEqual([full.manifest.pointId, inc.manifest.pointId].sort());
    expectSameBytes(await f.restored(full.manifest.pointId, D0), img1, 'full point');
    expectSameBytes(await f.restored(inc.manifest.pointId, D0), img2, 'incremental point');
    expectSameBytes(await f.restored(heal.manifest.pointId, D0), img3, 'healing full');

    // the chain goes on incrementally from the healed point
    await f.vm.writeRandom(D0, 7 * MiB, 4096);
    const next = await f.backup();
    expect(next.manifest.disks[0]).toMatchObject({ mode: 'incremental', reason: 'incremental', bytesRead: MiB });
    expectSameBytes(await f.restored(next.manifest.pointId, D0), f.vm.snapshot(D0), 'next incremental');
  });
});
