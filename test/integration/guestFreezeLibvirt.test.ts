import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup } from '../../backend/src/backup';
import { SshConnectionPool, SshLibvirtHost, SshQmpSocketHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { runTool } from '../../backend/src/util/exec';
import { FakeGuestAgent } from '../helpers/fakeGuestAgent';
import { startHostServices, virsh, type HostServices } from '../helpers/hostLab';

jest.setTimeout(180_000);

const IMAGES = '/var/lib/libvirt/images';
const SCRATCH = '/var/tmp/olvm-qga-libvirt-scratch';

/**
 * The guest agent of a libvirt domain through the SSH libvirt link (the hosts lab: real sshd,
 * real libvirtd). No guest OS runs, so no agent answers; what is checked is that libvirt's real
 * answers ("not connected" with the channel, "not configured" without, "not running" while
 * paused) give crash-consistent points with that reason, quickly, and the backup succeeds.
 */
describe('guest agent of a libvirt domain (virsh qemu-agent-command over ssh)', () => {
  let svc: HostServices;
  let pool: SshConnectionPool;
  let host: SshLibvirtHost;
  let repo: Repository;
  let work: string;
  const domains: Array<{ uuid: string; file: string }> = [];

  async function domain(name: string, opts: { channel: boolean; paused: boolean }): Promise<{ id: string; name: string }> {
    const uuid = randomUUID();
    const file = path.join(IMAGES, `olvm-qga-${uuid.slice(0, 8)}.qcow2`);
    await fs.mkdir(IMAGES, { recursive: true });
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(16 << 20)]);
    domains.push({ uuid, file });
    const channel = opts.channel ? "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>" : '';
    const xml = `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${file}'/><target dev='vda' bus='virtio'/><alias name='ua-${uuid}'/></disk>
    ${channel}<controller type='usb' model='none'/><video><model type='none'/></video><memballoon model='none'/></devices></domain>`;
    const xmlFile = path.join(work, `${uuid}.xml`);
    await fs.writeFile(xmlFile, xml);
    await virsh('create', ...(opts.paused ? ['--paused'] : []), xmlFile);
    return { id: uuid, name };
  }

  async function backupOf(vm: { id: string; name: string }): Promise<Awaited<ReturnType<typeof runBackup>>> {
    const qmp = await host.openQmp(vm);
    try {
      return await runBackup({ vm: { key: vm.id, name: vm.name }, qmp, host, repository: repo, scratchDir: SCRATCH, guestAgent: () => host.openGuestAgent(vm) });
    } finally {
      await qmp.close();
    }
  }

  beforeAll(async () => {
    svc = startHostServices();
    pool = new SshConnectionPool();
    // the restricted account: virsh qemu-agent-command through sudo
    host = new SshLibvirtHost({ ssh: { host: '127.0.0.1', port: svc.sshPort, username: svc.account, privateKey: svc.clientKey, hostKey: svc.hostKeyPub, idleCloseMs: 2000 }, pool });
    await fs.rm(SCRATCH, { recursive: true, force: true });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-qga-libvirt-'));
    repo = await Repository.init(path.join(work, 'repo'));
  });
  afterAll(async () => {
    for (const d of domains) {
      await virsh('destroy', d.uuid).catch(() => undefined);
      await fs.rm(d.file, { force: true });
    }
    await repo?.close();
    pool?.closeAll();
    await fs.rm(work, { recursive: true, force: true });
    await fs.rm(SCRATCH, { recursive: true, force: true });
  });

  test('a running domain with the agent channel but no agent: crash-consistent, "not connected"', async () => {
    const vm = await domain(`olvm-qga-ch-${process.pid}`, { channel: true, paused: false });
    const started = Date.now();
    const res = await backupOf(vm);
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^guest agent not answering: guest agent of vm .* on host .*QEMU guest agent is not connected/);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  test('a qmp-socket host forwards the agent socket over ssh: sync, ping, freeze, thaw', async () => {
    const agent = await FakeGuestAgent.start(path.join(work, 'vm.qga'));
    // the fake agent's socket is in root's private directory: root's link
    const link = new SshQmpSocketHost({ ssh: { host: '127.0.0.1', port: svc.sshPort, username: 'root', privateKey: svc.clientKey, hostKey: svc.hostKeyPub, idleCloseMs: 2000 }, pool, qmpDir: work });
    try {
      const ga = await link.openGuestAgent({ id: 'vm', name: 'vm' });
      await ga.ping({ timeoutMs: 2000 });
      expect(await ga.fsfreezeFreeze()).toBe(3);
      expect(await ga.fsfreezeThaw()).toBe(3);
      await ga.close();
      expect(agent.commands()).toEqual(['guest-sync-delimited', 'guest-ping', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
      await expect(link.openGuestAgent({ id: 'absent', name: 'absent' })).rejects.toMatchObject({ code: 'QGA_UNAVAILABLE' });
    } finally {
      await agent.stop();
    }
  });

  test('no agent channel: "not configured"; a paused domain: "not running"', async () => {
    const none = await domain(`olvm-qga-none-${process.pid}`, { channel: false, paused: false });
    expect((await backupOf(none)).manifest.meta['consistencyReason']).toMatch(/QEMU guest agent is not configured/);
    const paused = await domain(`olvm-qga-paused-${process.pid}`, { channel: true, paused: true });
    expect((await backupOf(paused)).manifest.meta['consistencyReason']).toMatch(/domain is not running/);
  });
});
