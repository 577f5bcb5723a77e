import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import { recoverInterruptedRun } from '../../backend/src/backup/recovery';
import { LocalHost } from '../../backend/src/hosts';
import { BlockApi } from '../../backend/src/qmp';
import { runTool } from '../../backend/src/util/exec';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';
import { REPO_FORMATS } from '../helpers/repoFormats';

const MiB = 1 << 20;
const D0 = 'virtio-disk0';

function disk(res: { manifest: { disks: Array<{ device: string }> } }, device: string): Record<string, unknown> {
  const d = res.manifest.disks.find((x) => x.device === device);
  if (!d) throw new Error(`no disk ${device} in point`);
  return { ...d };
}

/** QEMU must be left as found: no fleece node, job, export or foreign bitmap behind. */
async function expectQemuClean(f: BackupFixture): Promise<void> {
  const api = new BlockApi(await f.productQmp());
  expect(await api.jobIds()).toEqual([]);
  expect(await api.exportIds()).toEqual([]);
  const nodes = await (await f.productQmp()).execute('query-named-block-nodes', { flat: true });
  expect(nodes.map((n) => n['node-name']).filter((n) => n.startsWith('olvm-'))).toEqual([]);
}

describe.each(REPO_FORMATS)('backup of a qcow2 disk: full, incrementals, writes during the backup (repository $name)', (format) => {
  let f: BackupFixture;
  beforeAll(async () => {
    f = await BackupFixture.create('chain', [{ id: D0, format: 'qcow2', size: 64 * MiB }], format);
  });
  afterAll(async () => f?.dispose());

  test('every point restores to the disk as it was at that point', async () => {
    const expected: Array<{ pointId: string; image: Buffer }> = [];
    await f.vm.writeRandom(D0, 0, 3 * MiB);
    await f.vm.writeRandom(D0, 10 * MiB + 4096, 700 * 1024);
    await f.vm.writeRandom(D0, 63 * MiB, MiB);

    const full = await f.backup();
    expect(disk(full, D0)).toMatchObject({ mode: 'full', reason: 'first-backup' });
    expect(disk(full, D0)['bytesRead'] as number).toBeLessThan(10 * MiB); // only allocated data is read
    expected.push({ pointId: full.manifest.pointId, image: f.vm.snapshot(D0) });

    // incremental 1: scattered random writes, including unaligned ones
    await f.vm.writeRandom(D0, 20 * MiB + 12345, 5000);
    await f.vm.writeRandom(D0, 1 * MiB, 256 * 1024);
    const inc1 = await f.backup();
    expect(disk(inc1, D0)).toMatchObject({ mode: 'incremental', reason: 'incremental' });
    expect(disk(inc1, D0)['bytesRead']).toBe(2 * f.repo.chunkSize); // two chunks touched
    expected.push({ pointId: inc1.manifest.pointId, image: f.vm.snapshot(D0) });

    // incremental 2: zero-writes and discards over data
    await f.vm.writeZeroes(D0, 0, MiB);
    await f.vm.discard(D0, 63 * MiB, MiB);
    await f.vm.writeZeroes(D0, 2 * MiB + 64 * 1024, 128 * 1024);
    const inc2 = await f.backup();
    expect(disk(inc2, D0)).toMatchObject({ mode: 'incremental' });
    expect(disk(inc2, D0)['bytesRead'] as number).toBeLessThanOrEqual(MiB); // whole-zero chunks are not read
    expected.push({ pointId: inc2.manifest.pointId, image: f.vm.snapshot(D0) });

    // incremental 3: guest writes while the backup reads must land in the next point only
    await f.vm.writeRandom(D0, 30 * MiB, 2 * MiB);
    let atTransaction: Buffer | undefined;
    const inc3 = await f.backup({
      onFrozen: async () => {
        atTransaction = f.vm.snapshot(D0);
        await f.vm.writeRandom(D0, 30 * MiB + 4096, 8192); // inside data being backed up
        await f.vm.writeRandom(D0, 40 * MiB, MiB); // outside it
      },
    });
    expect(disk(inc3, D0)).toMatchObject({ mode: 'incremental' });
    expected.push({ pointId: inc3.manifest.pointId, image: atTransaction as Buffer });

    const inc4 = await f.backup();
    expect(disk(inc4, D0)).toMatchObject({ mode: 'incremental' });
    // exactly the chunks written during inc3: 8 KiB at 30 MiB + 4 KiB, 1 MiB at 40 MiB
    expect(disk(inc4, D0)['bytesRead']).toBe(f.repo.chunkSize + Math.max(f.repo.chunkSize, MiB));
    expected.push({ pointId: inc4.manifest.pointId, image: f.vm.snapshot(D0) });

    for (const [i, e] of expected.entries()) {
      expectSameBytes(await f.restored(e.pointId, D0), e.image, `point ${i} (${e.pointId})`);
    }
    const points = await f.repo.listPoints({ vmKey: 'vm1' });
    expect(points.map((p) => p.pointId)).toEqual(expected.map((e) => e.pointId));
    expect((await f.repo.verify()).ok).toBe(true);
    await expectQemuClean(f);
    // exactly one bitmap of ours: the one anchored to the newest point
    expect((await f.vm.bitmaps(D0)).map((b) => b.name)).toEqual([disk(inc4, D0)['bitmap']]);
  });

  test('restore to qcow2 gives the same guest-visible bytes', async () => {
    const res = await f.backup();
    const out = path.join(f.dir, 'out.qcow2');
    const { restoreToFile } = await import('../../backend/src/restore');
    await restoreToFile({ repository: f.repo, pointId: res.manifest.pointId, device: D0, out, format: 'qcow2' });
    const raw = path.join(f.dir, 'expected.raw');
    await fs.writeFile(raw, f.vm.snapshot(D0));
    const { runTool } = await import('../../backend/src/util/exec');
    const cmp = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, out]);
    expect(cmp).toMatch(/identical/);
    const info = JSON.parse(await runTool('qemu-img', ['info', '--output=json', out])) as { format: string; 'actual-size': number };
    expect(info.format).toBe('qcow2');
    expect(info['actual-size']).toBeLessThan(40 * MiB); // holes stayed holes
  });
});

describe('failures after the transaction lose no guest write', () => {
  let f: BackupFixture;
  beforeAll(async () => {
    f = await BackupFixture.create('fail', [{ id: D0, format: 'qcow2', size: 64 * MiB }]);
    await f.vm.writeRandom(D0, 0, 8 * MiB);
    await f.backup();
  });
  afterAll(async () => f?.dispose());

  async function failingBackup(cut: 'abort' | 'nbd-drop'): Promise<void> {
    const before = (await f.repo.listPoints()).length;
    await f.vm.writeRandom(D0, 16 * MiB, 40 * MiB); // plenty to read, so the failure hits mid-copy
    const ctl = new AbortController();
    let fired = false;
    const qmp = await f.productQmp();
    const err = await f
      .backup({
        signal: ctl.signal,
        onFrozen: async () => {
          await f.vm.writeRandom(D0, 60 * MiB, 64 * 1024); // written after the freeze: belongs to the next point
        },
        onProgress: (p) => {
          if (p.phase !== 'copying' || p.bytesDone === 0 || fired) return;
          fired = true;
          if (cut === 'abort') {
            ctl.abort(new Error('operator cancelled'));
          } else {
            void (async () => {
              for (const e of await qmp.execute('query-block-exports', {})) {
                await qmp.execute('block-export-del', { id: e.id, mode: 'hard' });
              }
            })();
          }
        },
      })
      .catch((e: unknown) => e);
    expect(fired).toBe(true);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe(cut === 'abort' ? 'BACKUP_ABORTED' : 'BACKUP_FAILED');
    expect((await f.repo.listPoints()).length).toBe(before); // no partial point visible
    expect((await f.repo.verify()).ok).toBe(true);
    await expectQemuClean(f);
  }

  test.each(['abort', 'nbd-drop'] as const)('a backup that fails mid-read (%s) leaves the next incremental complete', async (cut) => {
    await failingBackup(cut);
    await f.vm.writeRandom(D0, 5 * MiB, 4096);
    const next = await f.backup();
    expect(disk(next, D0)).toMatchObject({ mode: 'incremental' });
    expectSameBytes(await f.restored(next.manifest.pointId, D0), f.vm.snapshot(D0), 'point after failed backup');
    const scratch = await fs.readdir(path.join(f.dir, 'scratch'));
    expect(scratch).toEqual([]);
  });

  test.each(['qemu keeps running', 'qemu shuts down cleanly'] as const)(
    'a backup process that dies after its transaction (%s): the next run cleans up and loses nothing',
    async (afterwards) => {
      await f.vm.writeRandom(D0, 20 * MiB, 3 * MiB);
      // The monitor connection vanishes right after the transaction, as if our process died:
      // nothing can be rolled back, QEMU keeps the export, job, scratch node and frozen bitmap.
      const err = await f
        .backup({
          onFrozen: async () => {
            await f.vm.writeRandom(D0, 24 * MiB, 4096);
            await (await f.productQmp()).close();
          },
        })
        .catch((e: unknown) => e);
      expect((err as AppError).code).toBe('BACKUP_FAILED');
      expect((await f.vm.bitmaps(D0)).some((b) => b.name.startsWith('olvm-backup-frozen-'))).toBe(true);
      if (afterwards === 'qemu shuts down cleanly') {
        await f.vm.quit(); // the persistent frozen copy is stored in the image with the chain bitmap
        await f.restartVm();
        expect((await f.vm.bitmaps(D0)).some((b) => b.name.startsWith('olvm-backup-frozen-'))).toBe(true);
      }
      await f.vm.writeRandom(D0, 28 * MiB, 4096);
      const next = await f.backup();
      expect(disk(next, D0)).toMatchObject({ mode: 'incremental' });
      expect(next.warnings.join('\n')).toMatch(/interrupted backup/);
      expectSameBytes(await f.restored(next.manifest.pointId, D0), f.vm.snapshot(D0), 'point after a dead backup process');
      await expectQemuClean(f);
      // the dead run's scratch file and directory are gone too (a QEMU that quit closed them)
      expect(await fs.readdir(path.join(f.dir, 'scratch'))).toEqual([]);
      expect((await f.vm.bitmaps(D0)).map((b) => b.name)).toEqual([disk(next, D0)['bitmap']]);
    },
  );

  test('recovery removes exactly what a dead run left: export, job, scratch node, its file and directory', async () => {
    const qmp = await f.productQmp();
    const api = new BlockApi(qmp);
    const runDir = await fs.mkdtemp(path.join(f.dir, 'scratch', 'olvm-dead-'));
    const file = path.join(runDir, 'fleece-0.qcow2');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(64 * MiB)]);
    await api.addOverlay({ nodeName: 'olvm-fleece-dead-0', filename: file, backingNode: 'libvirt-1-format' });
    await api.transaction([{ kind: 'fleeceBackup', jobId: 'olvm-job-dead-0', device: 'libvirt-1-format', target: 'olvm-fleece-dead-0' }]);
    await api.nbdServerStart(path.join(runDir, 'nbd.sock'));
    await api.exportAdd({ id: 'olvm-export-dead-0', nodeName: 'olvm-fleece-dead-0', exportName: 'x' });

    const notes = await recoverInterruptedRun(api, new LocalHost());
    expect(notes.join('\n')).toMatch(/1 export\(s\), 1 job\(s\), 1 scratch node\(s\)/);
    await expect(fs.stat(runDir)).rejects.toMatchObject({ code: 'ENOENT' });
    // the server itself is replaced by the next run's export step; stop it here
    await api.nbdServerStop();
    await expectQemuClean(f);
  });

  test('a failed first backup leaves no bitmap behind and the next one is a full', async () => {
    const g = await BackupFixture.create('failfull', [{ id: D0, format: 'qcow2', size: 32 * MiB }]);
    try {
      await g.vm.writeRandom(D0, 0, 24 * MiB);
      const ctl = new AbortController();
      const err = await g
        .backup({ signal: ctl.signal, onProgress: (p) => p.bytesDone > 0 && ctl.abort() })
        .catch((e: unknown) => e);
      expect((err as AppError).code).toBe('BACKUP_ABORTED');
      expect(await g.vm.bitmaps(D0)).toEqual([]);
      const res = await g.backup();
      expect(disk(res, D0)).toMatchObject({ mode: 'full', reason: 'first-backup' });
      expectSameBytes(await g.restored(res.manifest.pointId, D0), g.vm.snapshot(D0), 'full after failed full');
    } finally {
      await g.dispose();
    }
  });
});

describe('QEMU restarts and crashes', () => {
  test('clean restart keeps the qcow2 chain; SIGKILL forces a full with bitmap-inconsistent', async () => {
    const f = await BackupFixture.create('crash', [{ id: D0, format: 'qcow2', size: 32 * MiB }]);
    try {
      await f.vm.writeRandom(D0, 0, 4 * MiB);
      await f.backup();
      await f.vm.writeRandom(D0, 8 * MiB, MiB);
      await f.vm.quit();
      await f.restartVm();
      const afterRestart = await f.backup();
      expect(disk(afterRestart, D0)).toMatchObject({ mode: 'incremental' });
      expectSameBytes(await f.restored(afterRestart.manifest.pointId, D0), f.vm.snapshot(D0), 'after clean restart');

      await f.vm.writeRandom(D0, 12 * MiB, 3 * MiB);
      await f.vm.flush(D0); // the data is on disk; only the bitmap dies with the process
      await f.vm.kill();
      await f.restartVm();
      const afterCrash = await f.backup();
      expect(disk(afterCrash, D0)).toMatchObject({ mode: 'full', reason: 'bitmap-inconsistent' });
      expectSameBytes(await f.restored(afterCrash.manifest.pointId, D0), f.vm.snapshot(D0), 'after crash');
      // the inconsistent bitmap is gone; the chain continues incrementally
      expect((await f.vm.bitmaps(D0)).map((b) => b.name)).toEqual([disk(afterCrash, D0)['bitmap']]);
      await f.vm.writeRandom(D0, 0, 4096);
      const next = await f.backup();
      expect(disk(next, D0)).toMatchObject({ mode: 'incremental' });
      expectSameBytes(await f.restored(next.manifest.pointId, D0), f.vm.snapshot(D0), 'incremental after crash');
    } finally {
      await f.dispose();
    }
  });
});

describe.each(REPO_FORMATS)('several disks and formats (repository $name)', (format) => {
  test('two disks (qcow2 + raw) share one point in time; raw goes full after a restart', async () => {
    const D1 = 'virtio-disk1';
    const f = await BackupFixture.create('multi', [
      { id: D0, format: 'qcow2', size: 32 * MiB },
      { id: D1, format: 'raw', size: 24 * MiB },
    ], format);
    try {
      await f.vm.writeRandom(D0, 0, 2 * MiB);
      await f.vm.writeRandom(D1, 4 * MiB, 3 * MiB);
      const full = await f.backup();
      expect(disk(full, D0)).toMatchObject({ mode: 'full', bitmapPersistent: true });
      expect(disk(full, D1)).toMatchObject({ mode: 'full', format: 'raw', bitmapPersistent: false });

      await f.vm.writeRandom(D0, 5 * MiB, 4096);
      await f.vm.writeRandom(D1, 20 * MiB, 8192);
      let frozen: Record<string, Buffer> = {};
      const inc = await f.backup({
        onFrozen: async () => {
          frozen = { [D0]: f.vm.snapshot(D0), [D1]: f.vm.snapshot(D1) };
          // one write per disk after the single transaction: neither may appear in this point
          await f.vm.writeRandom(D0, 6 * MiB, 4096);
          await f.vm.writeRandom(D1, 6 * MiB, 4096);
        },
      });
      expect(disk(inc, D0)).toMatchObject({ mode: 'incremental' });
      expect(disk(inc, D1)).toMatchObject({ mode: 'incremental' });
      for (const d of [D0, D1]) expectSameBytes(await f.restored(inc.manifest.pointId, d), frozen[d] as Buffer, `${d} at the transaction`);

      await f.vm.quit();
      await f.restartVm();
      const after = await f.backup();
      expect(disk(after, D0)).toMatchObject({ mode: 'incremental' });
      expect(disk(after, D1)).toMatchObject({ mode: 'full', reason: 'bitmap-missing' });
      for (const d of [D0, D1]) expectSameBytes(await f.restored(after.manifest.pointId, d), f.vm.snapshot(d), `${d} after restart`);
      // a raw full after restart re-reads the disk but stores (almost) nothing new
      expect(disk(after, D1)['chunksNew'] as number).toBeLessThanOrEqual(1);
    } finally {
      await f.dispose();
    }
  });

  test('a disk on a chain of snapshots: the top is read through the chain; a new top gets a full, then incrementals', async () => {
    const f = await BackupFixture.create('snap', [{ id: D0, format: 'qcow2', size: 32 * MiB }], format);
    try {
      await f.vm.writeRandom(D0, 0, 4 * MiB);
      await f.vm.externalSnapshot(D0);
      await f.vm.writeRandom(D0, 2 * MiB, MiB); // lands in the overlay, over data of the base
      const first = await f.backup();
      expect(disk(first, D0)).toMatchObject({ mode: 'full', reason: 'first-backup', node: 'snap-virtio-disk0-0' });
      expectSameBytes(await f.restored(first.manifest.pointId, D0), f.vm.snapshot(D0), 'through a chain');

      await f.vm.writeRandom(D0, 10 * MiB, MiB);
      const inc = await f.backup();
      expect(disk(inc, D0)).toMatchObject({ mode: 'incremental', bytesRead: MiB });

      const top = await f.vm.externalSnapshot(D0); // taken by the manager, without our bitmap
      await f.vm.writeRandom(D0, 20 * MiB, MiB);
      const afterSnap = await f.backup();
      expect(disk(afterSnap, D0)).toMatchObject({ mode: 'full', reason: 'node-changed', node: top });
      expectSameBytes(await f.restored(afterSnap.manifest.pointId, D0), f.vm.snapshot(D0), 'after a new snapshot');

      await f.vm.writeRandom(D0, 0, 4096);
      const next = await f.backup();
      expect(disk(next, D0)).toMatchObject({ mode: 'incremental', bytesRead: f.repo.chunkSize });
      expectSameBytes(await f.restored(next.manifest.pointId, D0), f.vm.snapshot(D0), 'incremental on the new top');
    } finally {
      await f.dispose();
    }
  });

  test('a grown disk gets a full backup with reason disk-resized', async () => {
    const f = await BackupFixture.create('resize', [{ id: D0, format: 'qcow2', size: 16 * MiB }], format);
    try {
      await f.vm.writeRandom(D0, 0, MiB);
      await f.backup();
      await f.vm.resize(D0, 24 * MiB);
      await f.vm.writeRandom(D0, 20 * MiB, MiB);
      const res = await f.backup();
      expect(disk(res, D0)).toMatchObject({ mode: 'full', reason: 'disk-resized', virtualSize: 24 * MiB });
      expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'grown disk');
      const next = await f.backup();
      expect(disk(next, D0)).toMatchObject({ mode: 'incremental', bytesRead: 0 });
    } finally {
      await f.dispose();
    }
  });
});
