import * as path from 'path';
import { AppError } from '../errors';
import { NbdClient, type NbdConnectOptions } from '../nbd';
import { GuestAgentClient, QmpClient, sudoAdmitsDomain, VirshGuestAgent, VirshSession, type GuestAgent, type QmpSession } from '../qmp';
import { groupOf } from './hostAccess';
import { SshConnectionPool, type SshConnection, type SshHostConfig } from './sshConnection';
import type { VmHostLink } from './vmHost';

export interface SshHostOptions {
  ssh: SshHostConfig;
  /** Shares one connection per host between links; a private pool is made when absent. */
  pool?: SshConnectionPool;
  /**
   * `user:group` QEMU runs as on the host (libvirt: `libvirt-qemu:libvirt-qemu` on Debian and
   * Ubuntu, `qemu:qemu` on EL/oVirt/OLVM). Scratch directories and fleece images are given to
   * it so QEMU can open them and bind its NBD socket there: with `chown` when the SSH user is
   * root; otherwise they stay the SSH user's and get QEMU's group (`chgrp`, the account must be
   * a member of it), which also lets the account reach the NBD socket QEMU creates there.
   * Absent: files stay the SSH user's.
   */
  qemuOwner?: string;
}

/** Scratch paths must be absolute and plain: they end up in `rm -rf` on the host. */
function checkPath(p: string, what: string): string {
  if (!path.isAbsolute(p) || path.normalize(p) !== p || p === '/' || p.includes('\n')) {
    throw new AppError('INVALID_ARGUMENT', `${what} must be an absolute, normalised path other than /: ${JSON.stringify(p)}`);
  }
  return p;
}

/**
 * The parts of a VM host reached over SSH that do not depend on how the monitor is reached:
 * scratch files and directories made with plain commands (arguments quoted, never interpolated
 * into a shell string), and NBD through sshd's unix-socket forwarding to QEMU's NBD server.
 */
abstract class SshHostBase implements VmHostLink {
  readonly name: string;
  readonly nbdConnections = 4;
  protected readonly conn: SshConnection;

  constructor(protected readonly opts: SshHostOptions) {
    this.conn = (opts.pool ?? new SshConnectionPool()).connection(opts.ssh);
    this.name = `ssh:${this.conn.hostLabel}`;
  }

  get hostLabel(): string {
    return this.conn.hostLabel;
  }

  abstract openQmp(vm: { id: string; name: string }, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<QmpSession>;
  abstract openGuestAgent(vm: { id: string; name: string }, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<GuestAgent>;

  /** `chown user:group` as root; a non-root account can only hand its files to a group it is in. */
  private giveToQemu(p: string): string[] | undefined {
    const owner = this.opts.qemuOwner;
    if (!owner) return undefined;
    if (this.opts.ssh.username === 'root') return ['chown', owner, '--', p];
    // `user:` names no group: chgrp is asked for the whole string and says what is wrong
    return ['chgrp', groupOf(owner) ?? owner, '--', p];
  }

  async createScratchImage(file: string, virtualSize: number, signal?: AbortSignal): Promise<void> {
    checkPath(file, 'scratch image');
    const call = { timeoutMs: 60_000, ...(signal ? { signal } : {}) };
    await this.conn.check(['qemu-img', 'create', '-q', '-f', 'qcow2', file, String(virtualSize)], { ...call, what: `creating ${file}` });
    const give = this.giveToQemu(file);
    if (give) {
      await this.conn.check(give, { ...call, what: `giving ${file} to ${this.opts.qemuOwner ?? ''}` });
      await this.conn.check(['chmod', '0660', '--', file], { ...call, what: `chmod of ${file}` });
    }
  }

  async removeFile(given: string): Promise<void> {
    const file = checkPath(given, 'file to remove');
    await this.conn.check(['rm', '-f', '--', file], { timeoutMs: 30_000, what: `removing ${file}` });
  }

  async makeScratchDir(parent: string, prefix: string): Promise<string> {
    checkPath(parent, 'scratch parent');
    if (!/^[A-Za-z0-9._-]+$/.test(prefix)) throw new AppError('INVALID_ARGUMENT', `scratch prefix ${JSON.stringify(prefix)} is not a plain name`);
    const call = { timeoutMs: 30_000 };
    // the parent only needs to be traversable by QEMU's user; the run's own dir is private to it
    await this.conn.check(['mkdir', '-p', '-m', '0711', '--', parent], { ...call, what: `creating ${parent}` });
    const dir = (await this.conn.check(['mktemp', '-d', '-p', parent, `${prefix}XXXXXXXX`], { ...call, what: `creating a scratch dir in ${parent}` })).trim();
    checkPath(dir, 'scratch dir');
    const give = this.giveToQemu(dir);
    if (give) {
      await this.conn.check(give, { ...call, what: `giving ${dir} to ${this.opts.qemuOwner ?? ''}` });
      await this.conn.check(['chmod', '0770', '--', dir], { ...call, what: `chmod of ${dir}` });
    }
    return dir;
  }

  async removeDir(given: string): Promise<void> {
    const dir = checkPath(given, 'directory to remove');
    await this.conn.check(['rm', '-rf', '--', dir], { timeoutMs: 30_000, what: `removing ${dir}` });
  }

  async connectNbd(socketPath: string, opts: NbdConnectOptions): Promise<NbdClient> {
    const stream = await this.conn.openUnixSocket(socketPath).catch((err: unknown) => {
      throw new AppError('NBD_CONNECT_FAILED', `cannot reach nbd socket ${socketPath} on host ${this.hostLabel}`, { cause: err, details: { host: this.hostLabel } });
    });
    try {
      return await NbdClient.connectStream(stream, opts);
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }
}

export interface SshLibvirtHostOptions extends SshHostOptions {
  /** libvirt URI on the host; default qemu:///system */
  libvirtUri?: string;
  /** Follow events through `virsh qemu-monitor-event` (default true). */
  events?: boolean;
  /**
   * Run virsh through `sudo -n` with the sudoers rule of HOSTS.md. Default: when the SSH user
   * is not root (false for an account allowed to use libvirt directly, e.g. in group libvirt).
   */
  sudo?: boolean;
}

/**
 * A KVM host run by libvirt: the monitor is reached through `virsh qemu-monitor-command` over
 * SSH (libvirt keeps the only connection to QEMU's monitor socket). The domain is looked up by
 * the VM's id first (oVirt/OLVM use the engine's VM id as the libvirt UUID), then by name.
 */
export class SshLibvirtHost extends SshHostBase {
  /** whether virsh runs through sudo on this host */
  readonly sudo: boolean;

  constructor(opts: SshLibvirtHostOptions) {
    super({ qemuOwner: 'libvirt-qemu:libvirt-qemu', ...opts });
    this.sudo = opts.sudo ?? opts.ssh.username !== 'root';
  }

  /** The VM's id (oVirt/OLVM: the domain's UUID), then its name; through sudo only what the rule admits. */
  private domains(vm: { id: string; name: string }): string[] {
    return [...new Set([vm.id, vm.name].filter((x) => x !== '' && (!this.sudo || sudoAdmitsDomain(x))))];
  }

  async openQmp(vm: { id: string; name: string }, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpSession> {
    const lo = this.opts as SshLibvirtHostOptions;
    const base = {
      ...(lo.libvirtUri ? { uri: lo.libvirtUri } : {}),
      vmLabel: vm.name,
      events: lo.events !== false,
      sudo: this.sudo,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    };
    const candidates = this.domains(vm);
    if (candidates.length === 0) {
      throw new AppError('HOST_DOMAIN_NOT_FOUND', `vm ${vm.name} on host ${this.hostLabel}: neither its id nor its name can be asked for through sudo (characters the sudoers rule does not admit)`, {
        details: { host: this.hostLabel, reason: 'DOMAIN_NOT_FOUND' },
      });
    }
    let last: unknown;
    for (const domain of candidates) {
      try {
        return await VirshSession.open(this.conn, { ...base, domain });
      } catch (err) {
        last = err;
        if (!(err instanceof AppError && err.code === 'HOST_DOMAIN_NOT_FOUND')) break;
      }
    }
    throw named(last, vm.name, this.hostLabel);
  }

  /** libvirt holds the agent channel: `virsh qemu-agent-command`, domain by id then by name. */
  openGuestAgent(vm: { id: string; name: string }): Promise<GuestAgent> {
    const lo = this.opts as SshLibvirtHostOptions;
    return Promise.resolve(
      new VirshGuestAgent(this.conn, {
        ...(lo.libvirtUri ? { uri: lo.libvirtUri } : {}),
        domains: this.domains(vm),
        vmLabel: vm.name,
        sudo: this.sudo,
      }),
    );
  }
}

export interface SshQmpSocketHostOptions extends SshHostOptions {
  /** The VM's QMP socket on the host; default `<qmpDir>/<vm id>.qmp`. */
  qmpSocket?: (vm: { id: string; name: string }) => string;
  /** The VM's guest agent channel on the host; default `<qmpDir>/<vm id>.qga`. */
  guestAgentSocket?: (vm: { id: string; name: string }) => string;
  qmpDir?: string;
}

/**
 * A host where QEMU exposes a QMP unix socket of its own (a plain QEMU, or libvirt with an extra
 * `-qmp` through `<qemu:commandline>`): the socket is forwarded over SSH and spoken to directly,
 * with events, like a local monitor.
 */
export class SshQmpSocketHost extends SshHostBase {
  constructor(opts: SshQmpSocketHostOptions) {
    super(opts);
  }

  async openQmp(vm: { id: string; name: string }, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpSession> {
    const so = this.opts as SshQmpSocketHostOptions;
    let socket: string;
    if (so.qmpSocket) socket = so.qmpSocket(vm);
    else if (so.qmpDir) socket = path.posix.join(so.qmpDir, `${vm.id}.qmp`);
    else throw new AppError('INVALID_ARGUMENT', `no qmp socket configured to find vm ${vm.name}'s monitor on host ${this.hostLabel}`);
    try {
      const stream = await this.conn.openUnixSocket(socket);
      const client = await QmpClient.overStream(stream, {
        label: `vm ${vm.name} on host ${this.hostLabel} (${socket})`,
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      return client;
    } catch (err) {
      throw named(err, vm.name, this.hostLabel);
    }
  }

  /** The agent channel's unix socket, forwarded over SSH like the monitor's. */
  async openGuestAgent(vm: { id: string; name: string }): Promise<GuestAgent> {
    const so = this.opts as SshQmpSocketHostOptions;
    let socket: string;
    if (so.guestAgentSocket) socket = so.guestAgentSocket(vm);
    else if (so.qmpDir) socket = path.posix.join(so.qmpDir, `${vm.id}.qga`);
    else throw new AppError('QGA_UNAVAILABLE', `no guest agent socket configured for vm ${vm.name} on host ${this.hostLabel}`);
    const label = `guest agent of vm ${vm.name} on host ${this.hostLabel} (${socket})`;
    const stream = await this.conn.openUnixSocket(socket).catch((err: unknown) => {
      throw new AppError('QGA_UNAVAILABLE', `${label}: cannot connect`, { cause: err, details: { host: this.hostLabel } });
    });
    return new GuestAgentClient(stream, label);
  }
}

/** Re-throws with the VM and host in the message, keeping code and details. */
function named(err: unknown, vmName: string, host: string): AppError {
  if (err instanceof AppError) {
    if (err.message.includes(vmName) && err.message.includes(host)) return err;
    return new AppError(err.code, `vm ${vmName} on host ${host}: ${err.message}`, { cause: err.cause ?? err, details: { host, ...err.details } });
  }
  return new AppError('QMP_CONNECT_FAILED', `cannot open the monitor of vm ${vmName} on host ${host}`, { cause: err, details: { host } });
}
