import { execFile } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { engineVmBackup } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { describeError } from '../../backend/src/errors';
import { HostDirectory, type HostsConfig } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';
import { EngineSim } from '../engine-sim';
import { expectSameBytes, restoredBytes } from '../helpers/backupFixture';
import { startHostServices, type HostServices } from '../helpers/hostLab';

const MiB = 1 << 20;
const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');

/**
 * The engine says which host a VM runs on (`vm.host` → `host.address`); the host directory
 * says how to reach that host. Here the simulator's host (127.0.0.1) is declared as an SSH
 * host whose VMs expose QMP sockets, so the whole backup goes through the private sshd.
 */
describe('engine-aware backup through the link of the VM’s host', () => {
  let dir: string;
  let svc: HostServices;
  let sim: EngineSim;
  let repo: Repository;
  let engine: EngineClient;
  let hostsFile: string;

  beforeAll(async () => {
    svc = startHostServices();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-engine-hosts-'));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim') });
    repo = await Repository.init(path.join(dir, 'repo'));
    engine = new EngineClient({ baseUrl: sim.baseUrl, auth: { kind: 'password', user: sim.users.admin.name, password: sim.users.admin.password } });
    hostsFile = path.join(dir, 'hosts.json');
    await fs.writeFile(hostsFile, JSON.stringify(hostsConfig()));
  });
  afterAll(async () => {
    await engine?.close();
    await repo?.close();
    await sim?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function hostsConfig(over: Partial<HostsConfig['hosts'][number]> = {}): HostsConfig {
    return {
      hosts: [
        {
          match: '127.0.0.1',
          kind: 'qmp-socket',
          qmpDir: sim.qmpDir,
          scratchDir: path.join(dir, 'remote-scratch'),
          ssh: { port: svc.sshPort, user: 'root', privateKeyFile: svc.clientKeyFile, hostKey: svc.hostKeyPub },
          ...over,
        },
      ],
    };
  }

  function restored(pointId: string, device: string): Promise<Buffer> {
    return restoredBytes(repo, pointId, device, path.join(dir, `r-${randomBytes(4).toString('hex')}.raw`));
  }

  test('a running vm and a down vm, full then incremental, over ssh to the host the engine names', async () => {
    const hosts = new HostDirectory(hostsConfig());
    try {
      const web = sim.vmByName('web01');
      const db = sim.vmByName('db01');
      const first = await engineVmBackup({ engine, vmId: web.id, repository: repo, host: hosts, scratchDir: '/nonexistent' });
      const disk = web.disks[0];
      if (!disk) throw new Error('no disk');
      await sim.guestWrite(web.id, disk.id, 7 * MiB, randomBytes(MiB));
      const second = await engineVmBackup({ engine, vmId: web.id, repository: repo, host: hosts, scratchDir: '/nonexistent' });
      expect(first.manifest.disks.every((d) => d.mode === 'full')).toBe(true);
      expect(second.manifest.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
      expect(second.manifest.disks.find((d) => d.device === disk.deviceId)?.bytesRead).toBe(MiB);
      for (const d of web.disks) expectSameBytes(await restored(second.manifest.pointId, d.deviceId), await sim.diskBytes(web.id, d.id), d.alias);

      // the QMP method starts a vm that is down (under `auto` the engine method would back it up cold)
      const down = await engineVmBackup({ engine, vmId: db.id, repository: repo, host: hosts, scratchDir: '/nonexistent', method: 'qmp' });
      expect(down.startedPaused).toBe(true);
      expect(sim.vmById(db.id).status).toBe('down');
      const kept = db.disks[0];
      if (!kept) throw new Error('no disk');
      expectSameBytes(await restored(down.manifest.pointId, kept.deviceId), await sim.diskBytes(db.id, kept.id), kept.alias);
      // the host entry's scratch directory was used, and left empty
      expect(await fs.readdir(path.join(dir, 'remote-scratch'))).toEqual([]);
    } finally {
      hosts.close();
    }
  });

  test('the command line takes --hosts; a host with a wrong pinned key is refused, naming it', async () => {
    const web = sim.vmByName('web01');
    const pw = path.join(dir, 'pw');
    await fs.writeFile(pw, sim.users.admin.password);
    const args = (file: string): string[] => [
      CLI, 'backup', '--repo', repo.dir, '--engine', sim.baseUrl, '--engine-user', sim.users.admin.name,
      '--engine-password-file', pw, '--vm-id', web.id, '--hosts', file, '--json',
    ];
    const ok = await run(args(hostsFile));
    expect(ok.stderr).toBe('');
    expect(JSON.parse(ok.stdout)).toMatchObject({ vm: 'web01', vmId: web.id });

    const badFile = path.join(dir, 'bad-hosts.json');
    await fs.writeFile(badFile, JSON.stringify(hostsConfig({ ssh: { port: svc.sshPort, user: 'root', privateKeyFile: svc.clientKeyFile, hostKey: svc.otherKeyPub } })));
    const bad = await run(args(badFile));
    expect(bad.code).not.toBe(0);
    const lines = bad.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/127\.0\.0\.1/);
    expect(lines[0]).toMatch(/host key/i);
    expect(lines[0]).toContain('web01');
  });

  test('a hosts file without an entry for the vm’s host says which host (QMP method; `auto` takes the engine method then)', async () => {
    const hosts = new HostDirectory({ hosts: [{ match: 'kvm9.example', kind: 'local' }] });
    const err = await engineVmBackup({ engine, vmId: sim.vmByName('web01').id, repository: repo, host: hosts, scratchDir: dir, method: 'qmp' }).catch((e: unknown) => e);
    expect(describeError(err)).toMatch(/web01.*no entry in the hosts configuration for host 127\.0\.0\.1/);
    const auto = await engineVmBackup({ engine, vmId: sim.vmByName('web01').id, repository: repo, host: hosts, scratchDir: dir });
    expect(auto.method).toBe('engine');
  });
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
