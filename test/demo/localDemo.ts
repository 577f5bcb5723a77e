/**
 * `npm run demo`: the product's main job end to end on this machine, with nothing to set up.
 * A real QEMU VM (TCG, two disks: qcow2 and raw) gets data written as a guest would; the
 * olvm-backup CLI takes a full backup, the guest changes a little, an incremental follows;
 * both points are listed, restored and compared with the disks, and the repository verified.
 * Everything lives in a temporary directory (printed; kept with --keep).
 */
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestVm } from '../helpers/qemuVm';

const MiB = 1 << 20;
const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

function olvm(...args: string[]): Promise<string> {
  process.stdout.write(`\n$ olvm-backup ${args.join(' ')}\n`);
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => {
      process.stdout.write(stdout);
      if (err) reject(new Error(stderr.trim() || err.message));
      else resolve(stdout);
    }),
  );
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-demo-'));
  const repo = path.join(dir, 'repo');
  process.stdout.write(`demo directory: ${dir}\n`);
  const vm = await TestVm.create(path.join(dir, 'vm'), [
    { id: 'virtio-disk0', format: 'qcow2', size: 256 * MiB },
    { id: 'virtio-disk1', format: 'raw', size: 64 * MiB },
  ]);
  try {
    process.stdout.write(`QEMU is running; its monitor for the product: ${vm.productQmp}\n`);
    for (let i = 0; i < 8; i++) await vm.writeRandom('virtio-disk0', i * 24 * MiB, 4 * MiB);
    await vm.writeRandom('virtio-disk1', 8 * MiB, 6 * MiB);

    await olvm('repo', 'init', '--repo', repo);
    const base = ['--repo', repo, '--qmp', vm.productQmp, '--vm', 'demo-vm', '--scratch', dir];
    const full = JSON.parse(await olvm('backup', ...base, '--json')) as { point: string };
    const afterFull = { d0: vm.snapshot('virtio-disk0'), d1: vm.snapshot('virtio-disk1') };

    process.stdout.write('\nthe guest writes 3 MiB in 3 places and zeroes 4 MiB\n');
    await vm.writeRandom('virtio-disk0', 100 * MiB + 4096, MiB);
    await vm.writeRandom('virtio-disk0', 200 * MiB, MiB);
    await vm.writeRandom('virtio-disk1', 40 * MiB, MiB);
    await vm.writeZeroes('virtio-disk0', 0, 4 * MiB);
    const inc = JSON.parse(await olvm('backup', ...base, '--json')) as { point: string };

    await olvm('points', '--repo', repo);
    for (const [point, label, expected] of [
      [full.point, 'full', afterFull],
      [inc.point, 'incremental', { d0: vm.snapshot('virtio-disk0'), d1: vm.snapshot('virtio-disk1') }],
    ] as const) {
      for (const [dev, want] of [['virtio-disk0', expected.d0], ['virtio-disk1', expected.d1]] as const) {
        const out = path.join(dir, `${label}-${dev}.raw`);
        await olvm('restore', '--repo', repo, '--point', point, '--disk', dev, '--out', out);
        const same = (await fs.readFile(out)).equals(want);
        process.stdout.write(`${label} point, ${dev}: restored image ${same ? 'is identical to' : 'DIFFERS FROM'} the disk at that point\n`);
        if (!same) process.exitCode = 1;
        await fs.rm(out);
      }
    }
    await olvm('verify', '--repo', repo);
  } finally {
    await vm.dispose();
    if (!keep) await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
