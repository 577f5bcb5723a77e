/**
 * Benchmark: the same full backup through the local link and through SSH on loopback
 * (ssh2, NBD over a forwarded unix socket), in one run, plus raw NBD reads over 1 and 4 SSH
 * channels to see whether parallel channels help.
 *
 *   npm run bench:ssh [-- --disk-gib 2 --data-gib 1]
 *
 * Needs the host services of the tests (test/hosts/up.sh: libvirtd is not used here, sshd is).
 * Prints one JSON object; nothing is asserted.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '16';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup } from '../../backend/src/backup';
import { LocalHost, SshConnectionPool, SshQmpSocketHost } from '../../backend/src/hosts';
import type { NbdClient } from '../../backend/src/nbd';
import { BlockApi, QmpClient } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { startHostServices } from '../helpers/hostLab';
import { TestVm } from '../helpers/qemuVm';
import { arg, fillImage, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** Reads every data extent of the export with `channels` NBD connections, 16 reads in flight in all. */
async function readAll(connect: () => Promise<NbdClient>, channels: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: channels }, connect));
  try {
    const first = clients[0] as NbdClient;
    const extents = (await first.extents('base:allocation')).filter((e) => (e.flags & 2) === 0);
    const chunks: Array<[number, number]> = [];
    for (const e of extents) for (let o = e.offset; o < e.offset + e.length; o += MiB) chunks.push([o, Math.min(MiB, e.offset + e.length - o)]);
    let next = 0;
    let bytes = 0;
    const perChannel = Math.max(1, Math.floor(16 / channels));
    await Promise.all(
      clients.flatMap((c) =>
        Array.from({ length: perChannel }, async () => {
          for (;;) {
            const w = chunks[next++];
            if (!w) return;
            const n = (await c.read(w[0], w[1])).length;
            bytes += n;
          }
        }),
      ),
    );
    return bytes;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => c.destroy())));
  }
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 2) * GiB;
  const dataBytes = arg('data-gib', 1) * GiB;
  const svc = startHostServices();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-sshbench-'));
  const pool = new SshConnectionPool();
  let vm: TestVm | undefined;
  try {
    vm = await TestVm.create(path.join(dir, 'vm'), [{ id: 'virtio-disk0', format: 'qcow2', size: diskBytes }]);
    await vm.quit();
    await fillImage(vm.diskFile('virtio-disk0'), diskBytes, dataBytes, dir);
    await vm.start();
    const productQmp = vm.productQmp;
    const ssh = new SshQmpSocketHost({
      ssh: { host: '127.0.0.1', port: svc.sshPort, username: 'root', privateKey: svc.clientKey, hostKey: svc.hostKeyPub },
      pool,
      qmpSocket: () => productQmp,
    });

    const backupWith = async (name: string, host: LocalHost | SshQmpSocketHost): Promise<{ seconds: number; MiBps: number }> => {
      const repo = await Repository.init(path.join(dir, `repo-${name}`));
      const qmp = host instanceof LocalHost ? await QmpClient.connectUnix(productQmp) : await host.openQmp({ id: 'bench', name: 'bench' });
      try {
        const t = await timed(() => runBackup({ vm: { key: 'bench', name: 'bench' }, qmp, host, repository: repo, scratchDir: dir }));
        const read = t.value.manifest.disks[0]?.bytesRead ?? 0;
        return { seconds: t.seconds, MiBps: read / MiB / t.seconds };
      } finally {
        await qmp.close();
        await repo.close();
        await fs.rm(repo.dir, { recursive: true, force: true });
      }
    };
    const local = await backupWith('local', new LocalHost());
    const overSsh = await backupWith('ssh', ssh);

    // raw NBD over the tunnel: a read-only export of the disk node
    const qmp = await QmpClient.connectUnix(productQmp);
    const api = new BlockApi(qmp);
    const sock = path.join(dir, 'raw-nbd.sock');
    const raw: Record<string, { seconds: number; MiBps: number }> = {};
    try {
      await api.nbdServerStart(sock);
      await api.exportAdd({ id: 'bench-raw', nodeName: 'libvirt-1-format', exportName: 'raw' });
      const nbdOpts = { exportName: 'raw', metaContexts: ['base:allocation'] };
      for (const [label, connect] of [
        ['local-1ch', () => new LocalHost().connectNbd(sock, nbdOpts)],
        ['ssh-1ch', () => ssh.connectNbd(sock, nbdOpts)],
        ['ssh-4ch', () => ssh.connectNbd(sock, nbdOpts)],
      ] as const) {
        const channels = label.endsWith('4ch') ? 4 : 1;
        const t = await timed(() => readAll(connect, channels));
        raw[label] = { seconds: t.seconds, MiBps: t.value / MiB / t.seconds };
      }
    } finally {
      await api.exportDel('bench-raw', { hard: true }).catch(() => undefined);
      await api.nbdServerStop().catch(() => undefined);
      await qmp.close();
    }
    process.stdout.write(
      JSON.stringify(
        {
          machine: { cpus: os.cpus().length, node: process.version },
          disk: { virtualBytes: diskBytes, dataBytes },
          fullBackup: { local, ssh: overSsh, sshVsLocal: overSsh.MiBps / local.MiBps },
          rawNbdRead: raw,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    pool.closeAll();
    await vm?.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
