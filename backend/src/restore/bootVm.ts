/**
 * The isolated QEMU of a boot check: disks from NBD exports, each under a throw-away qcow2
 * overlay in a private directory (the guest's writes land there, never in the repository: the
 * export is read-only anyway), no network device (`-nodefaults -nic none`), no host directory,
 * a VGA device for the screenshot, the serial console and the firmware's debug port (SeaBIOS
 * logs "Boot failed" / "No bootable device" there, not on the serial line) written to files this
 * module reads, a QMP socket, optionally a guest-agent channel. Everything it makes lives in
 * `dir`, which its caller owns and removes.
 */
import { spawn, type ChildProcess } from 'child_process';
import { existsSync, promises as fs, constants as fsc } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { GuestAgentClient, QmpClient, type WirePciDevice } from '../qmp';
import { runTool } from '../util/exec';


/** util-linux's setpriv (Debian, Oracle Linux): sets the parent-death signal, then execs. */
const SETPRIV = '/usr/bin/setpriv';
export type BootAccel = 'kvm' | 'tcg';

export interface BootVmDisk {
  /** nbd+unix export of the disk (our NbdServer). */
  socket: string;
  exportName: string;
  size: number;
}

export interface BootVmOptions {
  dir: string;
  disks: readonly BootVmDisk[];
  accel: BootAccel;
  memoryMiB: number;
  /** Adds a virtio-serial guest-agent channel (org.qemu.guest_agent.0). */
  guestAgent: boolean;
  qemu?: string;
}

/** KVM when /dev/kvm can be opened for reading and writing by this account. */
export async function kvmUsable(): Promise<boolean> {
  try {
    await fs.access('/dev/kvm', fsc.R_OK | fsc.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** PCI class 0x02xx is "network controller" (any NIC model, virtio or emulated). */
export function networkDevices(buses: Array<{ devices: WirePciDevice[] }>): string[] {
  const out: string[] = [];
  const walk = (devs: readonly WirePciDevice[]): void => {
    for (const d of devs) {
      if (d.class_info.class >> 8 === 0x02) out.push(`${d.qdev_id || 'unnamed'} (${d.class_info.desc ?? 'network'})`);
      if (d.pci_bridge?.devices) walk(d.pci_bridge.devices);
    }
  };
  for (const b of buses) walk(b.devices);
  return out;
}

export class BootVm {
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;
  private qmp: QmpClient | undefined;
  private stderr = '';

  private constructor(private readonly child: ChildProcess, readonly opts: BootVmOptions) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
        resolve();
      });
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (this.stderr.length < 8192) this.stderr += b.toString();
    });
  }

  get consoleFile(): string {
    return path.join(this.opts.dir, 'console.log');
  }

  get firmwareFile(): string {
    return path.join(this.opts.dir, 'firmware.log');
  }

  private get qmpSocket(): string {
    return path.join(this.opts.dir, 'qmp.sock');
  }

  get agentSocket(): string {
    return path.join(this.opts.dir, 'qga.sock');
  }

  /** How QEMU ended (with its stderr), or undefined while it runs. */
  get exit(): string | undefined {
    if (this.exitInfo === undefined) return undefined;
    const err = this.stderr.trim().split('\n').slice(-3).join(' / ');
    return err ? `${this.exitInfo}: ${err}` : this.exitInfo;
  }

  /** Makes the overlays, starts QEMU and connects to its monitor (TOOL_FAILED when it cannot). */
  static async start(opts: BootVmOptions): Promise<BootVm> {
    const args = ['-name', 'olvm-boot-check', '-M', 'q35', '-accel', opts.accel, '-m', String(opts.memoryMiB), '-smp', '1'];
    if (opts.accel === 'kvm') args.push('-cpu', 'host');
    // no defaults (no NIC, no floppy, no CD, no parallel), no user config, no network at all
    args.push('-nodefaults', '-no-user-config', '-nic', 'none', '-display', 'none', '-device', 'VGA');
    args.push('-chardev', `file,id=console,path=${path.join(opts.dir, 'console.log')}`, '-serial', 'chardev:console');
    args.push('-chardev', `file,id=firmware,path=${path.join(opts.dir, 'firmware.log')}`, '-device', 'isa-debugcon,iobase=0x402,chardev=firmware');
    args.push('-qmp', `unix:${path.join(opts.dir, 'qmp.sock')},server=on,wait=off`);
    // only the boot disk is bootable: a firmware "Boot failed" is then the verdict
    args.push('-boot', 'strict=on');
    for (const [i, d] of opts.disks.entries()) {
      const overlay = path.join(opts.dir, `overlay-${i}.qcow2`);
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', overlay, String(d.size)], { timeoutMs: 30_000 });
      args.push(
        '-blockdev',
        JSON.stringify({ driver: 'nbd', 'node-name': `point-${i}`, server: { type: 'unix', path: d.socket }, export: d.exportName, 'read-only': true }),
        '-blockdev',
        JSON.stringify({ driver: 'qcow2', 'node-name': `disk-${i}`, file: { driver: 'file', filename: overlay }, backing: `point-${i}` }),
        '-device',
        `virtio-blk-pci,drive=disk-${i},id=disk${i}${i === 0 ? ',bootindex=1' : ''}`,
      );
    }
    if (opts.guestAgent) {
      args.push('-chardev', `socket,id=qga,path=${path.join(opts.dir, 'qga.sock')},server=on,wait=off`);
      args.push('-device', 'virtio-serial-pci,id=serial0', '-device', 'virtserialport,chardev=qga,name=org.qemu.guest_agent.0');
    }
    const qemu = opts.qemu ?? 'qemu-system-x86_64';
    // setpriv asks the kernel to kill QEMU when our process dies, even by SIGKILL: a killed
    // check must not leave a VM running on the backup server (it execs QEMU: same pid)
    const guard = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', qemu, ...args]] as const : [qemu, args] as const;
    const child = spawn(guard[0], guard[1], { stdio: ['ignore', 'ignore', 'pipe'] });
    const vm = new BootVm(child, opts);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new AppError('TOOL_FAILED', 'qemu-system-x86_64 cannot be started', { cause: err })));
    });
    try {
      await spawned;
      vm.qmp = await vm.connectQmp();
    } catch (err) {
      await vm.kill();
      throw err;
    }
    return vm;
  }

  /** The monitor socket appears shortly after start; QEMU may also exit first (bad options). */
  private async connectQmp(): Promise<QmpClient> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.exitInfo !== undefined) throw new AppError('TOOL_FAILED', `the boot check's qemu ${this.exit ?? 'exited'} before its monitor opened`);
      try {
        return await QmpClient.connectUnix(this.qmpSocket, { timeoutMs: 5000, label: 'boot check qemu' });
      } catch (err) {
        if (Date.now() > deadline) throw new AppError('TOOL_FAILED', "the boot check's qemu opened no monitor within 30 s", { cause: err });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private get monitor(): QmpClient {
    if (!this.qmp) throw new AppError('QMP_DISCONNECTED', "the boot check's qemu has no monitor");
    return this.qmp;
  }

  /** QEMU's run state (`running`, `internal-error`, `guest-panicked`, `shutdown`…). */
  async status(): Promise<string> {
    return (await this.monitor.execute('query-status', {}, { timeoutMs: 10_000 })).status;
  }

  /** The network controllers QMP query-pci lists (none expected). */
  async networkDevices(): Promise<string[]> {
    return networkDevices(await this.monitor.execute('query-pci', {}, { timeoutMs: 10_000 }));
  }

  /** Writes the screen to `base`.png (QEMU ≥ 7.1) or `base`.ppm; returns the file. */
  async screenshot(base: string): Promise<string> {
    try {
      await this.monitor.execute('screendump', { filename: `${base}.png`, format: 'png' }, { timeoutMs: 30_000 });
      return `${base}.png`;
    } catch (err) {
      if (this.exitInfo !== undefined) throw err;
      await this.monitor.execute('screendump', { filename: `${base}.ppm` }, { timeoutMs: 30_000 });
      return `${base}.ppm`;
    }
  }

  /** One guest-agent ping (false when the agent does not answer within `timeoutMs`). */
  async agentPing(timeoutMs: number): Promise<boolean> {
    let agent: GuestAgentClient | undefined;
    try {
      agent = await GuestAgentClient.connectUnix(this.agentSocket, { timeoutMs, label: 'boot check guest agent' });
      await agent.ping({ timeoutMs });
      return true;
    } catch {
      return false;
    } finally {
      await agent?.close().catch(() => undefined);
    }
  }

  /** Stops QEMU: `quit` over QMP, SIGKILL if it is still there after 5 s. */
  async kill(): Promise<void> {
    if (this.exitInfo === undefined && this.qmp && !this.qmp.closed) {
      await this.qmp.execute('quit', {}, { timeoutMs: 5000 }).catch(() => undefined);
    }
    await this.qmp?.close().catch(() => undefined);
    if (this.exitInfo === undefined) {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}
