// Host links over SSH against real components: a private sshd on 127.0.0.1 (test/hosts/up.sh),
// a real libvirtd running TCG domains, and a plain QEMU reached through its QMP socket. The
// libvirt links log in as the restricted account (virsh through sudo, HOSTS.md); root still
// works (guest writes, the name fallback, the plain QEMU, which runs as root here). A missing
// tool fails these tests; they never skip.
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runBackup, type BackupRequest, type BackupResult } from '../../backend/src/backup';
import { AppError, describeError } from '../../backend/src/errors';
import { SshConnectionPool, SshLibvirtHost, SshQmpSocketHost, sha256Fingerprint, shellCommand, type SshHostConfig } from '../../backend/src/hosts';
import { BlockApi, type QmpSession } from '../../backend/src/qmp';
import { Repository } from '../../backend/src/repository';
import { restoreToFile } from '../../backend/src/restore';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';
import { CutProxy, LibvirtTestVm, sshHostConfig, startHostServices, type HostServices } from '../helpers/hostLab';

jest.setTimeout(240_000);

const MiB = 1 << 20;
const SCRATCH = '/var/tmp/olvm-hostlinks-scratch';

let svc: HostServices;
let pool: SshConnectionPool;
let work: string;

/** The restricted account up.sh made (not root, in QEMU's group, virsh through sudo), and root. */
const sshConfig = (over: Partial<SshHostConfig> = {}): SshHostConfig => sshHostConfig(svc, svc.account, over);
const rootConfig = (over: Partial<SshHostConfig> = {}): SshHostConfig => sshHostConfig(svc, 'root', over);

function fingerprintOf(pub: string): string {
  const blob = pub.split(/\s+/)[1] ?? '';
  return sha256Fingerprint(Buffer.from(blob, 'base64'));
}

async function expectRejects(p: Promise<unknown>, check: (e: AppError) => void): Promise<AppError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof AppError)) throw new Error(`expected an AppError, got ${String(caught)}`);
  check(caught);
  return caught;
}

async function restoredBytes(repo: Repository, pointId: string, device: string): Promise<Buffer> {
  const out = path.join(work, `restore-${pointId}-${device}.raw`);
  await restoreToFile({ repository: repo, pointId, device, out, format: 'raw' });
  try {
    return await fs.readFile(out);
  } finally {
    await fs.rm(out, { force: true });
  }
}

/** QEMU left as found: no scratch node, job, export or frozen bitmap of ours. */
async function expectQemuClean(qmp: QmpSession, nodes: string[]): Promise<void> {
  const api = new BlockApi(qmp);
  expect((await api.jobIds()).filter((j) => j.startsWith('olvm-'))).toEqual([]);
  expect(await api.exportIds()).toEqual([]);
  expect((await api.nodes()).map((n) => n.nodeName).filter((n) => n.startsWith('olvm-'))).toEqual([]);
  for (const n of nodes) expect((await api.bitmaps(n)).map((b) => b.name).filter((b) => b.startsWith('olvm-backup-frozen-'))).toEqual([]);
}

async function scratchLeft(): Promise<string[]> {
  return existsSync(SCRATCH) ? fs.readdir(SCRATCH) : [];
}

beforeAll(async () => {
  svc = startHostServices();
  pool = new SshConnectionPool();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-hostlinks-'));
});

afterAll(async () => {
  pool?.closeAll();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('arguments are quoted for the remote shell', () => {
  expect(shellCommand(['virsh', 'a b', "it's", '$(touch x)', '`id`', ''])).toBe(`virsh 'a b' 'it'\\''s' '$(touch x)' '\`id\`' ''`);
  expect(() => shellCommand(['a\0b'])).toThrow(/NUL/);
});

describe('libvirt host over ssh (virsh qemu-monitor-command)', () => {
  // A name that breaks any command built by string concatenation.
  // libvirt forbids '/' in names: the injected commands would touch files in the ssh user's
  // home (the remote shell's cwd) or the test's cwd
  const canaryName = `olvm-hostlinks-pwned-${process.pid}`;
  const canaries = [path.join(os.homedir(), canaryName), path.resolve(canaryName), path.join('/', canaryName)];
  const vmName = `olvm-test-vm 'q"$(touch ${canaryName})\`touch ${canaryName}\`;x`;
  const canaryTouched = (): boolean => canaries.some((c) => existsSync(c));
  let vm: LibvirtTestVm;
  let repo: Repository;
  let host: SshLibvirtHost;
  /** root's link: guest writes go through HMP, which the restricted account may not send */
  let rootHost: SshLibvirtHost;
  let nodes: string[] = [];
  const expected: Array<{ pointId: string; images: Map<string, Buffer> }> = [];

  const vmRef = (): { id: string; name: string } => ({ id: vm.uuid, name: vmName });

  async function backup(h: SshLibvirtHost, extra: Partial<BackupRequest> = {}, onEvent?: (name: string) => void): Promise<BackupResult> {
    const qmp = await h.openQmp(vmRef());
    if (onEvent) qmp.onEvent((e) => onEvent(e.event));
    try {
      return await runBackup({ vm: { key: 'lv1', name: vmName }, qmp, host: h, repository: repo, scratchDir: SCRATCH, ...extra });
    } finally {
      await qmp.close();
    }
  }

  /** Guest-like writes through root's virsh path: HMP qemu-io on the device backend. */
  async function guestWrite(alias: string, offset: number, length: number, pattern: number): Promise<void> {
    const qmp = await rootHost.openQmp(vmRef());
    try {
      const api = new BlockApi(qmp);
      const dev = (await api.listDevices()).find((d) => d.deviceId === alias);
      if (!dev) throw new Error(`no device ${alias}`);
      const out = await api.hmp(`qemu-io -d ${dev.qdevPath} "write -P 0x${pattern.toString(16)} ${offset} ${length}"`);
      if (/error|fail|invalid/i.test(out)) throw new Error(`qemu-io failed: ${out}`);
    } finally {
      await qmp.close();
    }
    vm.recordPattern(alias, offset, length, pattern);
  }

  function remember(res: BackupResult): void {
    const images = new Map<string, Buffer>();
    for (const d of vm.disks) images.set(d.alias, vm.snapshot(d.alias));
    expected.push({ pointId: res.manifest.pointId, images });
  }

  async function checkAllPoints(): Promise<void> {
    for (const e of expected) for (const [alias, image] of e.images) expectSameBytes(await restoredBytes(repo, e.pointId, alias), image, `point ${e.pointId} disk ${alias}`);
  }

  beforeAll(async () => {
    for (const c of canaries) await fs.rm(c, { force: true });
    vm = await LibvirtTestVm.create(vmName, { qcow2: 64 * MiB, raw: 16 * MiB });
    repo = await Repository.init(path.join(work, 'repo-libvirt'));
    // pinned by fingerprint here; by public key elsewhere
    host = new SshLibvirtHost({ ssh: sshConfig({ hostKey: fingerprintOf(svc.hostKeyPub) }), pool });
    rootHost = new SshLibvirtHost({ ssh: rootConfig(), pool });
    // a scratch parent left by an earlier run as root would not be the account's to write in
    await fs.rm(SCRATCH, { recursive: true, force: true });
  });

  afterAll(async () => {
    await repo?.close();
    await vm?.dispose();
    await fs.rm(SCRATCH, { recursive: true, force: true });
  });

  test('the domain is found by uuid or (as root) by a name full of shell metacharacters; node names are discovered', async () => {
    expect([host.sudo, rootHost.sudo]).toEqual([true, false]);
    const byUuid = await host.openQmp(vmRef());
    const devices = await new BlockApi(byUuid).listDevices();
    await byUuid.close();
    expect(devices.map((d) => d.deviceId).sort()).toEqual(vm.disks.map((d) => d.alias).sort());
    nodes = devices.map((d) => d.nodeName);
    // libvirt numbers nodes itself; whatever it chose is what we use
    expect(nodes.every((n) => /^libvirt-\d+-format$/.test(n))).toBe(true);

    // an id libvirt does not know: root's link falls back to the name, quoted intact
    const unknownId = '00000000-0000-4000-8000-000000000000';
    const byName = await rootHost.openQmp({ id: unknownId, name: vmName });
    expect(['prelaunch', 'paused']).toContain((await byName.execute('query-status', {})).status);
    await byName.close();
    // through sudo such a name cannot be asked for: the id alone is tried, and not found
    await expectRejects(host.openQmp({ id: unknownId, name: vmName }), (e) => {
      expect(e.code).toBe('HOST_DOMAIN_NOT_FOUND');
      expect(e.message).toContain(vmName);
    });
    expect(canaryTouched()).toBe(false);
  });

  test('qemu refusing a command is a QMP_COMMAND_FAILED with its class and text, though virsh exits 0', async () => {
    const qmp = await host.openQmp(vmRef());
    try {
      await expectRejects(qmp.execute('block-dirty-bitmap-remove', { node: 'no-such-node', name: 'x' }), (e) => {
        expect(e.code).toBe('QMP_COMMAND_FAILED');
        expect(e.details?.['qmpClass']).toBe('GenericError');
        expect(e.message).toContain('no-such-node');
        expect(e.message).toContain(vmName);
      });
    } finally {
      await qmp.close();
    }
  });

  test('full, guest writes, incrementals: every point restores byte-identical', async () => {
    const [q, r] = vm.disks.map((d) => d.alias) as [string, string];
    await guestWrite(q, 0, 3 * MiB, 0xaa);
    await guestWrite(q, 40 * MiB + 4096, 700 * 1024, 0xbb);
    await guestWrite(r, 1 * MiB, 2 * MiB, 0xcc);
    const seen: string[] = [];
    const full = await backup(host, {}, (name) => seen.push(name));
    expect(full.manifest.disks.map((d) => d.mode)).toEqual(['full', 'full']);
    // QEMU's events reach the session through virsh qemu-monitor-event
    expect(seen).toContain('JOB_STATUS_CHANGE');
    expect(seen).toContain('BLOCK_JOB_CANCELLED');
    expect(seen).toContain('BLOCK_EXPORT_DELETED');
    remember(full);

    await guestWrite(q, 20 * MiB + 12345, 5000, 0x11);
    await guestWrite(r, 15 * MiB, MiB, 0x22);
    const inc1 = await backup(host);
    expect(inc1.manifest.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    const qDisk = inc1.manifest.disks.find((d) => d.device === q);
    expect(qDisk?.bytesRead).toBe(repo.chunkSize); // exactly the one chunk touched
    remember(inc1);

    await guestWrite(q, 63 * MiB, MiB, 0x33);
    const inc2 = await backup(host);
    remember(inc2);

    await checkAllPoints();
    const qmp = await host.openQmp(vmRef());
    await expectQemuClean(qmp, nodes);
    await qmp.close();
    expect(await scratchLeft()).toEqual([]);
    expect(canaryTouched()).toBe(false);
  });

  test('ssh cut while reading: the backup fails clearly, the next one is exact and nothing is left', async () => {
    const q = vm.disks[0]?.alias as string;
    await guestWrite(q, 4 * MiB, 8 * MiB, 0x44);
    const before = expected.length;
    const proxy = await CutProxy.start(svc.sshPort);
    const cutPool = new SshConnectionPool();
    const fragile = new SshLibvirtHost({ ssh: sshConfig({ port: proxy.port, keepaliveIntervalMs: 1000 }), pool: cutPool });
    let cutDone = false;
    try {
      const err = await expectRejects(
        backup(fragile, {
          onProgress: (p) => {
            if (p.phase === 'copying' && p.bytesDone > 0 && !cutDone) {
              cutDone = true;
              proxy.cut();
            }
          },
        }),
        (e) => expect(e.code).toBe('BACKUP_FAILED'),
      );
      expect(cutDone).toBe(true);
      expect(err.message).toContain(vmName);
      // the one-line report says the ssh connection to that host was lost
      expect(describeError(err)).toMatch(new RegExp(`ssh connection (failed|lost) on host 127\\.0\\.0\\.1:${proxy.port}|ssh connection to host 127\\.0\\.0\\.1:${proxy.port} lost`));
    } finally {
      cutPool.closeAll();
      await proxy.close();
    }
    expect(expected.length).toBe(before);

    // What the dead run left in QEMU and on the host is still there ...
    const look = await host.openQmp(vmRef());
    const leftovers = await new BlockApi(look).exportIds();
    await look.close();
    expect(leftovers.filter((id) => id.startsWith('olvm-export-')).length).toBeGreaterThan(0);

    // ... until the next contact, which cleans it and takes an exact incremental.
    await guestWrite(q, 30 * MiB, MiB, 0x55);
    const next = await backup(host);
    expect(next.warnings.join('\n')).toMatch(/interrupted backup/);
    expect(next.manifest.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    remember(next);
    await checkAllPoints();

    const qmp = await host.openQmp(vmRef());
    await expectQemuClean(qmp, nodes);
    await qmp.close();
    expect(await scratchLeft()).toEqual([]);
    // no event listener of the dead session still runs on the host
    let listeners: string[] = [];
    for (let i = 0; i < 50; i++) {
      listeners = (await fsReadCmdlines()).filter((c) => c.includes('qemu-monitor-event'));
      if (listeners.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listeners).toEqual([]);
  });

  test('unknown domain and unreachable host are clear errors naming host and vm', async () => {
    await expectRejects(host.openQmp({ id: 'no-such-vm-id', name: 'no-such-vm' }), (e) => {
      expect(e.code).toBe('HOST_DOMAIN_NOT_FOUND');
      expect(e.details?.['reason']).toBe('DOMAIN_NOT_FOUND');
      expect(e.message).toContain('no-such-vm');
      expect(e.message).toContain(`127.0.0.1:${svc.sshPort}`);
    });
    const dead = new SshLibvirtHost({ ssh: sshConfig({ port: 1, connectTimeoutMs: 3000 }), pool: new SshConnectionPool() });
    await expectRejects(dead.openQmp(vmRef()), (e) => {
      expect(e.code).toBe('HOST_UNREACHABLE');
      expect(e.details?.['reason']).toBe('UNREACHABLE');
      expect(e.message).toContain('127.0.0.1:1');
      expect(e.message).toContain(vmName);
    });
  });
});

describe('ssh host key pinning', () => {
  test('a host presenting another key is refused with a coded error naming it; keys are not in the message', async () => {
    for (const pin of [svc.otherKeyPub, fingerprintOf(svc.otherKeyPub)]) {
      const h = new SshLibvirtHost({ ssh: sshConfig({ hostKey: pin }), pool: new SshConnectionPool() });
      await expectRejects(h.openQmp({ id: 'x', name: 'some-vm' }), (e) => {
        expect(e.code).toBe('HOST_KEY_MISMATCH');
        expect(e.details?.['reason']).toBe('HOST_KEY_MISMATCH');
        expect(e.message).toContain(`127.0.0.1:${svc.sshPort}`);
        const blobs = [svc.otherKeyPub, svc.hostKeyPub].map((k) => k.split(/\s+/)[1] ?? '');
        for (const b of blobs) expect(e.message).not.toContain(b);
        expect(e.message).not.toContain(fingerprintOf(svc.hostKeyPub));
      });
      await expectRejects(h.createScratchImage('/tmp/olvm-never', MiB), (e) => expect(e.details?.['reason']).toBe('HOST_KEY_MISMATCH'));
    }
  });
});

describe('plain qemu over ssh (forwarded qmp socket)', () => {
  const D0 = 'virtio-disk0';
  const D1 = 'virtio-disk1';
  let f: BackupFixture;
  let host: SshQmpSocketHost;

  beforeAll(async () => {
    f = await BackupFixture.create('sshqmp', [
      { id: D0, format: 'qcow2', size: 32 * MiB },
      { id: D1, format: 'raw', size: 16 * MiB },
    ]);
    // this QEMU runs as root, its socket in root's private directory: root's link
    host = new SshQmpSocketHost({ ssh: rootConfig(), pool, qmpSocket: () => f.vm.productQmp });
  });
  afterAll(async () => f?.dispose());

  test('full, writes, incremental through the tunnel; every point restores byte-identical', async () => {
    const run = async (): Promise<BackupResult> => {
      const qmp = await host.openQmp({ id: 'plain', name: 'plain-vm' });
      try {
        return await runBackup({ vm: { key: 'plain', name: 'plain-vm' }, qmp, host, repository: f.repo, scratchDir: path.join(f.dir, 'scratch') });
      } finally {
        await qmp.close();
      }
    };
    const points: Array<{ id: string; d0: Buffer; d1: Buffer }> = [];
    await f.vm.writeRandom(D0, 0, 2 * MiB);
    await f.vm.writeRandom(D1, 5 * MiB + 512, 300 * 1024);
    const full = await run();
    points.push({ id: full.manifest.pointId, d0: f.vm.snapshot(D0), d1: f.vm.snapshot(D1) });
    await f.vm.writeRandom(D0, 17 * MiB + 100, 5000);
    await f.vm.writeZeroes(D1, 5 * MiB, 64 * 1024);
    const inc = await run();
    expect(inc.manifest.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    points.push({ id: inc.manifest.pointId, d0: f.vm.snapshot(D0), d1: f.vm.snapshot(D1) });
    for (const p of points) {
      expectSameBytes(await f.restored(p.id, D0), p.d0, `point ${p.id} ${D0}`);
      expectSameBytes(await f.restored(p.id, D1), p.d1, `point ${p.id} ${D1}`);
    }
    expect(await fs.readdir(path.join(f.dir, 'scratch'))).toEqual([]);
  });

  test('a missing qmp socket on the host is a clear error', async () => {
    const h = new SshQmpSocketHost({ ssh: rootConfig(), pool, qmpSocket: () => '/nonexistent/vm.qmp' });
    await expectRejects(h.openQmp({ id: 'x', name: 'ghost-vm' }), (e) => {
      expect(e.code).toBe('QMP_CONNECT_FAILED');
      expect(e.message).toContain('ghost-vm');
      expect(e.message).toContain('/nonexistent/vm.qmp');
    });
  });
});

test('one ssh connection per host is shared and closed when idle', async () => {
  const p = new SshConnectionPool();
  const a = new SshLibvirtHost({ ssh: sshConfig({ idleCloseMs: 300 }), pool: p });
  const b = new SshQmpSocketHost({ ssh: sshConfig({ idleCloseMs: 300 }), pool: p, qmpDir: '/nonexistent' });
  const conn = p.connection(sshConfig());
  await a.makeScratchDir(SCRATCH, 'olvm-pooltest-').then((d) => b.removeDir(d));
  expect(conn.connected).toBe(true);
  await new Promise((r) => setTimeout(r, 800));
  expect(conn.connected).toBe(false);
  await fs.rm(SCRATCH, { recursive: true, force: true });
});

/** Command lines of every process on this machine (the "remote" host is this machine). */
async function fsReadCmdlines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push((await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
