import { spawn, type ChildProcess } from 'child_process';
import { existsSync } from 'fs';
import * as path from 'path';
import { LocalHost } from '../../backend/src/hosts';
import { GuestAgentClient } from '../../backend/src/qmp';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';
import { waitForSockets } from '../helpers/waitForSockets';

const MiB = 1 << 20;
const D0 = 'virtio-disk0';

/**
 * The real qemu-ga binary, run on this machine (no guest can boot here) with its agent socket
 * as the channel: the protocol as the real agent speaks it. The freeze commands are blocked
 * with `-b` — a freeze here would freeze the test machine's own filesystems — and the test
 * checks through guest-info that they are before any backup runs. qemu-ga is looked up in
 * $QEMU_GA, /usr/bin, /usr/sbin (Debian: package qemu-guest-agent); absent = the suite fails.
 */
const binary = [process.env['QEMU_GA'], '/usr/bin/qemu-ga', '/usr/sbin/qemu-ga'].find((p): p is string => !!p && existsSync(p));

describe('the real qemu-ga on the channel (freeze blocked)', () => {
  // a missing tool fails loudly, never skips (DESIGN.md §6)
  if (!binary) throw new Error('qemu-ga not found ($QEMU_GA, /usr/bin, /usr/sbin): apt-get install qemu-guest-agent');
  let f: BackupFixture;
  let ga: ChildProcess;
  let sock: string;

  beforeAll(async () => {
    f = await BackupFixture.create('realqga', [{ id: D0, format: 'qcow2', size: 16 * MiB }]);
    sock = path.join(f.dir, 'vm1.qga');
    ga = spawn(binary, ['-m', 'unix-listen', '-p', sock, '-b', 'guest-fsfreeze-freeze,guest-fsfreeze-freeze-list', '-t', f.dir], { stdio: 'ignore' });
    await waitForSockets([sock], () => (ga.exitCode !== null ? `qemu-ga exited ${ga.exitCode}` : undefined));
    const c = await GuestAgentClient.connectUnix(sock);
    try {
      const info = (await c.execute('guest-info')) as { supported_commands: Array<{ name: string; enabled: boolean }> };
      const freeze = info.supported_commands.find((x) => x.name === 'guest-fsfreeze-freeze');
      if (freeze?.enabled !== false) throw new Error('qemu-ga did not block guest-fsfreeze-freeze: refusing to run (it would freeze this machine)');
    } finally {
      await c.close();
    }
  });
  afterAll(async () => {
    ga?.kill();
    await f?.dispose();
  });

  test('sync, ping, status and thaw as the real agent answers them; a reconnecting client resyncs', async () => {
    for (let i = 0; i < 2; i++) {
      const c = await GuestAgentClient.connectUnix(sock);
      await c.ping({ timeoutMs: 2000 });
      expect(await c.fsfreezeStatus()).toBe('thawed');
      expect(await c.fsfreezeThaw()).toBe(0);
      await expect(c.fsfreezeFreeze()).rejects.toMatchObject({ code: 'QGA_COMMAND_FAILED', message: expect.stringMatching(/disabled/) as unknown });
      await c.close();
    }
  });

  test('a backup whose freeze the agent refuses: crash-consistent with the agent\'s reason, exact restore', async () => {
    await f.vm.writeRandom(D0, MiB, 2 * MiB);
    const host = new LocalHost({ guestAgentSocket: () => sock });
    const res = await f.backup({ host, guestAgent: () => host.openGuestAgent({ id: 'vm1', name: 'vm1' }) });
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^freeze failed: .*Command guest-fsfreeze-freeze has been disabled/);
    expect(res.warnings).toEqual([]);
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'point');
  });
});
