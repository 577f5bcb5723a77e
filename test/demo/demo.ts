/**
 * `npm run demo`: the product's main job end to end on this machine, with nothing to set up.
 * The engine simulator (HTTPS, SSO, REST, its VMs real QEMU processes) stands in for OLVM; the
 * olvm-backup CLI backs up a running VM twice (full, then incremental after a guest write) and a
 * VM that is down (started paused, its backup=0 disk left out, stopped again); the points are
 * listed, restored and compared with the disks, the repository verified, and the engine's event
 * log shows what happened. Everything lives in a temporary directory (kept with --keep).
 */
import { execFile } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineSim } from '../engine-sim';

const MiB = 1 << 20;
const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

function olvm(...args: string[]): Promise<string> {
  process.stdout.write(`\n$ olvm-backup ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}\n`);
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => {
      process.stdout.write(stdout);
      if (stderr) process.stdout.write(stderr);
      if (err) reject(new Error(stderr.trim() || err.message));
      else resolve(stdout);
    }),
  );
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-demo-'));
  process.stdout.write(`demo directory: ${dir}\n`);
  const sim = await EngineSim.start({ dataDir: path.join(dir, 'engine'), tls: true });
  try {
    process.stdout.write(`engine simulator: ${sim.baseUrl} (VMs: ${sim.vmIds().map((id) => `${sim.vmById(id).name} ${sim.vmById(id).status}`).join(', ')})\n`);
    const repo = path.join(dir, 'repo');
    const passwordFile = path.join(dir, 'engine-password');
    await fs.writeFile(passwordFile, sim.users.admin.password, { mode: 0o600 });
    const engineArgs = (vmId: string): string[] => [
      '--repo', repo, '--engine', sim.baseUrl, '--engine-user', sim.users.admin.name, '--engine-password-file', passwordFile,
      '--engine-ca', sim.caFile as string, '--vm-id', vmId, '--qmp-dir', sim.qmpDir, '--scratch', dir,
    ];
    await olvm('repo', 'init', '--repo', repo);

    const web = sim.vmByName('web01');
    const db = sim.vmByName('db01');
    await olvm('backup', ...engineArgs(web.id));
    const disk = web.disks[0];
    if (!disk) throw new Error('web01 has no disk');
    process.stdout.write(`\nthe guest of web01 writes 2 MiB to ${disk.alias}\n`);
    await sim.guestWrite(web.id, disk.id, 10 * MiB, randomBytes(2 * MiB));
    await olvm('backup', ...engineArgs(web.id));
    process.stdout.write(`\ndb01 is ${sim.vmById(db.id).status}: the backup starts it paused and stops it again\n`);
    await olvm('backup', ...engineArgs(db.id));
    process.stdout.write(`db01 is ${sim.vmById(db.id).status} again\n`);

    const points = JSON.parse(await olvm('points', '--repo', repo, '--json')) as Array<{ pointId: string; vm: { id: string } }>;
    for (const vm of [web, db]) {
      const last = points.filter((p) => p.vm.id === vm.id).pop();
      if (!last) continue;
      for (const d of vm.disks.filter((x) => !/backup=0/.test(x.description))) {
        const out = path.join(dir, `${vm.name}-${d.alias}.raw`);
        await olvm('restore', '--repo', repo, '--point', last.pointId, '--disk', d.deviceId, '--out', out);
        const same = (await fs.readFile(out)).equals(await sim.diskBytes(vm.id, d.id));
        process.stdout.write(`${vm.name}/${d.alias}: the restored image ${same ? 'is identical to' : 'DIFFERS FROM'} the disk\n`);
        if (!same) process.exitCode = 1;
        await fs.rm(out);
      }
    }
    await olvm('verify', '--repo', repo);
    process.stdout.write('\nthe engine event log:\n');
    for (const e of sim.events().filter((x) => x.origin === 'olvm-backup')) process.stdout.write(`  [${e.severity}] ${e.description}\n`);
  } finally {
    await sim.close();
    if (!keep) await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
