import { execFileSync } from 'child_process';
import { randomUUID } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { SshHostConfig } from '../../backend/src/hosts';
import { runTool } from '../../backend/src/util/exec';
import { requireTools } from './tools';

/** What test/hosts/up.sh started: a private sshd on loopback with its keys; libvirtd. */
export interface HostServices {
  sshPort: number;
  hostKeyPub: string;
  otherKeyPub: string;
  /** the service's key: root logs in with it, and so does `account` (from 127.0.0.1 only) */
  clientKey: string;
  clientKeyFile: string;
  /** the restricted account (not root, in QEMU's group, virsh through sudo; HOSTS.md) */
  account: string;
  /** a key the account accepts only from 192.0.2.1, never from here */
  elsewhereKey: string;
  /** the sudoers rule up.sh installed, as `olvm-backup host-access` rendered it */
  sudoersFile: string;
  /** the files `olvm-backup host-access` wrote for the account (authorized_keys, sudoers, …) */
  accessDir: string;
}

const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * Starts (or reuses) libvirtd, virtlogd and the test sshd through test/hosts/up.sh. A missing
 * tool fails loudly: these tests never skip.
 */
export function startHostServices(): HostServices {
  requireTools('virsh', 'libvirtd', 'virtlogd', '/usr/sbin/sshd', 'ssh-keygen', 'qemu-img', 'qemu-system-x86_64', 'stdbuf', '/usr/bin/sudo', 'visudo');
  const script = path.join(REPO_ROOT, 'test/hosts/up.sh');
  let out: string;
  try {
    out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`test/hosts/up.sh failed: ${e.stderr ?? e.message}`);
  }
  const kv = new Map(
    out
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .flatMap((m) => (m ? [[m[1] as string, m[2] as string] as const] : [])),
  );
  const get = (k: string): string => {
    const v = kv.get(k);
    if (!v) throw new Error(`test/hosts/up.sh printed no ${k}`);
    return v;
  };
  return {
    sshPort: Number(get('SSH_PORT')),
    hostKeyPub: readFileSync(get('SSH_HOST_KEY_PUB'), 'utf8').trim(),
    otherKeyPub: readFileSync(get('SSH_OTHER_KEY_PUB'), 'utf8').trim(),
    clientKey: readFileSync(get('SSH_CLIENT_KEY'), 'utf8'),
    clientKeyFile: get('SSH_CLIENT_KEY'),
    account: get('SSH_ACCOUNT'),
    elsewhereKey: readFileSync(get('SSH_ELSEWHERE_KEY'), 'utf8'),
    sudoersFile: get('SSH_ACCOUNT_SUDOERS'),
    accessDir: get('SSH_ACCOUNT_ACCESS'),
  };
}

/** The product's SSH settings for the lab's sshd, logging in as `username` (the restricted
 *  `account`, or root) with the service's key and the pinned host key. */
export function sshHostConfig(svc: HostServices, username: string, over: Partial<SshHostConfig> = {}): SshHostConfig {
  return { host: '127.0.0.1', port: svc.sshPort, username, privateKey: svc.clientKey, hostKey: svc.hostKeyPub, idleCloseMs: 2000, ...over };
}

export const LIBVIRT_URI = 'qemu:///system';
const IMAGES = '/var/lib/libvirt/images';

export function virsh(...args: string[]): Promise<string> {
  return runTool('virsh', ['-q', '-c', LIBVIRT_URI, ...args], { timeoutMs: 60_000 });
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

export interface LibvirtDisk {
  alias: string; // ua-<uuid>: the qdev id the product sees
  format: 'qcow2' | 'raw';
  size: number;
  file: string;
}

/**
 * A transient libvirt domain (q35, TCG, started paused: QEMU is in prelaunch, the guest never
 * runs) with a qcow2 and a raw disk carrying `ua-<uuid>` aliases like oVirt's. An in-memory
 * reference of each disk is kept; tests update it with every write they make.
 */
export class LibvirtTestVm {
  readonly reference = new Map<string, Buffer>();

  private constructor(readonly name: string, readonly uuid: string, readonly disks: LibvirtDisk[]) {}

  static async create(name: string, sizes: { qcow2: number; raw: number }): Promise<LibvirtTestVm> {
    const tag = randomUUID().slice(0, 8);
    const uuid = randomUUID();
    const disks: LibvirtDisk[] = [
      { alias: `ua-${randomUUID()}`, format: 'qcow2', size: sizes.qcow2, file: path.join(IMAGES, `olvm-test-${tag}-0.qcow2`) },
      { alias: `ua-${randomUUID()}`, format: 'raw', size: sizes.raw, file: path.join(IMAGES, `olvm-test-${tag}-1.raw`) },
    ];
    await fs.mkdir(IMAGES, { recursive: true });
    for (const d of disks) {
      const opts = d.format === 'qcow2' ? ['-o', 'compat=1.1'] : [];
      await runTool('qemu-img', ['create', '-q', '-f', d.format, ...opts, d.file, String(d.size)]);
    }
    const vm = new LibvirtTestVm(name, uuid, disks);
    for (const d of disks) vm.reference.set(d.alias, Buffer.alloc(d.size));
    const diskXml = disks
      .map(
        (d, i) => `
    <disk type='file' device='disk'>
      <driver name='qemu' type='${d.format}'${d.format === 'qcow2' ? " cache='none' discard='unmap'" : ''}/>
      <source file='${xmlEscape(d.file)}'/>
      <target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/>
      <alias name='${d.alias}'/>
    </disk>`,
      )
      .join('');
    const xml = `<domain type='qemu'>
  <name>${xmlEscape(name)}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>${diskXml}
    <controller type='usb' model='none'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
    const xmlFile = path.join(IMAGES, `olvm-test-${tag}.xml`);
    await fs.writeFile(xmlFile, xml);
    try {
      await virsh('create', '--paused', xmlFile);
    } catch (err) {
      await vm.removeFiles();
      throw err;
    } finally {
      await fs.rm(xmlFile, { force: true });
    }
    return vm;
  }

  /** The reference after a guest write of `pattern` over [offset, offset+length). */
  recordPattern(alias: string, offset: number, length: number, pattern: number): void {
    const r = this.reference.get(alias);
    if (!r) throw new Error(`no disk ${alias}`);
    r.fill(pattern, offset, offset + length);
  }

  snapshot(alias: string): Buffer {
    return Buffer.from(this.reference.get(alias) ?? Buffer.alloc(0));
  }

  async dispose(): Promise<void> {
    await virsh('destroy', this.uuid).catch(() => undefined);
    await this.removeFiles();
  }

  private async removeFiles(): Promise<void> {
    for (const d of this.disks) await fs.rm(d.file, { force: true });
  }
}

/**
 * A TCP relay in front of sshd whose connections can be cut at any moment, like a network
 * failure; after `cut()` it refuses every new connection too (the host is unreachable).
 */
export class CutProxy {
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;

  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(targetPort: number): Promise<CutProxy> {
    const ref: { proxy?: CutProxy } = {};
    const server = net.createServer((client) => {
      const proxy = ref.proxy;
      if (!proxy || proxy.refusing) {
        client.destroy();
        return;
      }
      const upstream = net.createConnection({ host: '127.0.0.1', port: targetPort });
      proxy.sockets.add(client);
      proxy.sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ref.proxy = new CutProxy(server, (server.address() as net.AddressInfo).port);
    return ref.proxy;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  cut(): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
