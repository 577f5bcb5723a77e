import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup, type EngineVmBackupRequest } from '../../backend/src/backup';
import { freezeGuest } from '../../backend/src/backup/consistency';
import { EngineClient } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { GuestAgentClient } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { SimQemu } from '../engine-sim/qemu';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { FakeGuestAgent } from '../helpers/fakeGuestAgent';

const MiB = 1 << 20;

describe('guest freeze in the engine-aware backup (engine simulator, agent channel at <qmpDir>/<vm id>.qga)', () => {
  let dir: string;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-qgae-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, caFile: sim.caFile, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
  });
  afterAll(async () => {
    await engine?.close();
    await repo?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function backup(vmId: string, extra: Partial<EngineVmBackupRequest> = {}): ReturnType<typeof engineVmBackup> {
    return engineVmBackup({ engine, vmId, repository: repo, host: new LocalHost({ qmpDir: sim.qmpDir }), scratchDir: path.join(dir, 'scratch'), ...extra });
  }

  test('an agent on the channel: filesystem-consistent point, said in the manifest and the engine event; exact restore', async () => {
    const web = sim.vmByName('web01');
    const agent = await FakeGuestAgent.start(path.join(sim.qmpDir, `${web.id}.qga`));
    try {
      const d0 = web.disks[0];
      if (!d0) throw new Error('web01 has no disk');
      await sim.guestWrite(web.id, d0.id, 3 * MiB, randomBytes(MiB));
      const res = await backup(web.id);
      expect(res.manifest.consistency).toBe('filesystem');
      expect(res.manifest.meta['consistencyReason']).toBe('froze 3 filesystems');
      expect(agent.frozen).toBe(false);
      expect(agent.commands().filter((c) => c.startsWith('guest-fsfreeze-') && c !== 'guest-fsfreeze-status')).toEqual(['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
      const ev = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === web.id).pop();
      expect(ev?.description).toMatch(/filesystem-consistent \(froze 3 filesystems\)/);
      for (const d of web.disks) {
        expectSameBytes(await restoredBytes(repo, res.manifest.pointId, d.deviceId, path.join(dir, `r-${randomBytes(4).toString('hex')}.raw`)), await sim.diskBytes(web.id, d.id), d.alias);
      }
      const optOut = await backup(web.id, { consistency: 'crash' });
      expect(optOut.manifest.consistency).toBe('crash');
      expect(optOut.manifest.meta['consistencyReason']).toBe('crash-consistent by request');
    } finally {
      await agent.stop();
    }
  });

  test('no agent channel: crash-consistent with the reason, the backup succeeds', async () => {
    const web = sim.vmByName('web01');
    const res = await backup(web.id);
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^guest agent not answering: .*cannot connect/);
    const ev = sim.events().filter((e) => e.origin === 'olvm-backup' && e.vmId === web.id).pop();
    expect(ev?.description).toMatch(/crash-consistent \(guest agent not answering/);
  });
});

describe('a real QEMU agent channel with no agent in the guest', () => {
  test('the channel accepts the connection, the ping times out, the point would be crash-consistent', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-qgaq-'));
    const sock = path.join(dir, 'vm.qga');
    const q = await SimQemu.launch({
      vmId: '11111111-2222-3333-4444-555555555555',
      name: 'bare',
      memoryMiB: 64,
      disks: [],
      productQmp: path.join(dir, 'p.qmp'),
      privateQmp: path.join(dir, 's.qmp'),
      guestAgentSocket: sock,
      logFile: path.join(dir, 'qemu.log'),
      scratchDir: dir,
      onExit: () => undefined,
    });
    try {
      const c = await GuestAgentClient.connectUnix(sock);
      await expect(c.ping({ timeoutMs: 500 })).rejects.toMatchObject({ code: 'QGA_TIMEOUT' });
      await c.close();
      const g = await freezeGuest({ mode: 'auto', openAgent: () => GuestAgentClient.connectUnix(sock), pingTimeoutMs: 500 });
      expect(g.consistency).toBe('crash');
      expect(g.reason).toMatch(/^guest agent not answering: .*timed out after 500 ms/);
      expect(await g.release()).toBeUndefined();
    } finally {
      await q.quit();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
