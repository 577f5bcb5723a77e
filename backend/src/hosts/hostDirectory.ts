import { readFileSync } from 'fs';
import { AppError } from '../errors';
import { LocalHost } from './localHost';
import { SshConnectionPool, type SshHostConfig } from './sshConnection';
import { SshLibvirtHost, SshQmpSocketHost } from './sshHost';
import type { VmHostLink } from './vmHost';

/**
 * How the service reaches each KVM host, by the address the engine gives for it
 * (`host.address`); `match: "*"` is the default for hosts not listed. Kinds:
 *  - `local`: QEMU runs on this machine, its monitor at `<qmpDir>/<vm id>.qmp`;
 *  - `libvirt`: SSH, QMP through `virsh qemu-monitor-command` (OLVM/oVirt, plain libvirt);
 *  - `qmp-socket`: SSH, the VM's own QMP socket `<qmpDir>/<vm id>.qmp` forwarded.
 * A non-root `ssh.user` on a libvirt host runs virsh through `sudo -n` (HOSTS.md).
 * `scratchDir` is on that host: fleece images must sit beside QEMU.
 */
export interface HostEntry {
  match: string;
  kind: 'local' | 'libvirt' | 'qmp-socket';
  qmpDir?: string;
  scratchDir?: string;
  ssh?: { port?: number; user: string; privateKeyFile: string; hostKey: string };
  libvirtUri?: string;
  qemuOwner?: string;
  /** libvirt hosts: virsh through `sudo -n` (default: when ssh.user is not root; HOSTS.md) */
  sudo?: boolean;
}

export interface HostsConfig {
  hosts: HostEntry[];
}

export interface ResolvedHost {
  link: VmHostLink;
  /** where this host's scratch files go, when the entry says */
  scratchDir: string | undefined;
}

/** Links by host address, one SSH connection per host shared by every VM on it. */
export class HostDirectory {
  private readonly pool = new SshConnectionPool();
  private readonly links = new Map<string, ResolvedHost>();

  constructor(private readonly config: HostsConfig) {
    for (const e of config.hosts) validate(e);
  }

  static fromFile(file: string): HostDirectory {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new AppError('INVALID_ARGUMENT', `cannot read the hosts file ${file}`, { cause: err });
    }
    const hosts = (parsed as { hosts?: unknown }).hosts;
    if (!Array.isArray(hosts)) throw new AppError('INVALID_ARGUMENT', `hosts file ${file} has no "hosts" list`);
    return new HostDirectory({ hosts: hosts as HostEntry[] });
  }

  linkFor(address: string): ResolvedHost {
    const known = this.links.get(address);
    if (known) return known;
    const entry = this.config.hosts.find((h) => h.match === address) ?? this.config.hosts.find((h) => h.match === '*');
    if (!entry) throw new AppError('INVALID_ARGUMENT', `no entry in the hosts configuration for host ${address} (and no "*" default)`);
    const resolved = { link: this.build(entry, address), scratchDir: entry.scratchDir };
    this.links.set(address, resolved);
    return resolved;
  }

  close(): void {
    this.pool.closeAll();
  }

  private build(e: HostEntry, address: string): VmHostLink {
    if (e.kind === 'local') return new LocalHost(e.qmpDir ? { qmpDir: e.qmpDir } : {});
    const ssh = sshConfig(e, address);
    if (e.kind === 'libvirt') {
      return new SshLibvirtHost({
        ssh,
        pool: this.pool,
        ...(e.libvirtUri ? { libvirtUri: e.libvirtUri } : {}),
        ...(e.qemuOwner ? { qemuOwner: e.qemuOwner } : {}),
        ...(e.sudo !== undefined ? { sudo: e.sudo } : {}),
      });
    }
    return new SshQmpSocketHost({ ssh, pool: this.pool, ...(e.qmpDir ? { qmpDir: e.qmpDir } : {}), ...(e.qemuOwner ? { qemuOwner: e.qemuOwner } : {}) });
  }
}

function sshConfig(e: HostEntry, address: string): SshHostConfig {
  const s = e.ssh as NonNullable<HostEntry['ssh']>;
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(s.privateKeyFile);
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `cannot read the ssh key ${s.privateKeyFile} for host ${address}`, { cause: err });
  }
  return { host: address, ...(s.port ? { port: s.port } : {}), username: s.user, privateKey, hostKey: s.hostKey };
}

function validate(e: HostEntry): void {
  const where = `hosts entry ${JSON.stringify(e.match)}`;
  if (typeof e.match !== 'string' || e.match === '') throw new AppError('INVALID_ARGUMENT', `a hosts entry has no "match"`);
  if (!['local', 'libvirt', 'qmp-socket'].includes(e.kind)) throw new AppError('INVALID_ARGUMENT', `${where}: kind must be local, libvirt or qmp-socket`);
  if (e.kind !== 'local') {
    if (!e.ssh?.user || !e.ssh.privateKeyFile || !e.ssh.hostKey) {
      throw new AppError('INVALID_ARGUMENT', `${where}: an ssh host needs ssh.user, ssh.privateKeyFile and ssh.hostKey (pinned)`);
    }
  }
  if (e.kind === 'qmp-socket' && !e.qmpDir) throw new AppError('INVALID_ARGUMENT', `${where}: a qmp-socket host needs qmpDir`);
  if (e.sudo !== undefined && (typeof e.sudo !== 'boolean' || e.kind !== 'libvirt')) {
    throw new AppError('INVALID_ARGUMENT', `${where}: "sudo" is true or false, and only for libvirt hosts (it is how virsh is run)`);
  }
}
