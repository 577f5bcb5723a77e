import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as path from 'path';
import { waitForSockets } from '../helpers/waitForSockets';
import { QmpClient } from '../../backend/src/qmp';

export interface QemuDisk {
  diskId: string;
  file: string;
  format: 'qcow2' | 'raw';
  readOnly: boolean;
}

export interface QemuLaunch {
  vmId: string;
  name: string;
  memoryMiB: number;
  disks: QemuDisk[];
  /** the product-facing monitor: <qmpDir>/<vmId>.qmp */
  productQmp: string;
  /** the simulator's own monitor */
  privateQmp: string;
  /**
   * Adds the guest agent channel as vdsm/libvirt configure it: a virtio-serial controller and a
   * `virtserialport` named `org.qemu.guest_agent.0` whose host end is this unix socket
   * (QEMU listens). No guest OS runs, so nothing answers on it: a client connects and waits.
   * Off by default: a fake agent (test/helpers/fakeGuestAgent.ts) can then sit at
   * `<qmpDir>/<vmId>.qga`, where the product's LocalHost looks for the channel.
   */
  guestAgentSocket?: string;
  logFile: string;
  scratchDir: string;
  /** called once when the process ends; `requested` = after quit()/kill() */
  onExit: (why: string, requested: boolean) => void;
}

/**
 * One VM's QEMU, the way vdsm/libvirt would run it: q35, TCG, vCPUs never started (-S; the
 * status the engine shows is the simulator's), disks as -blockdev file + format nodes named like
 * libvirt's (libvirt-N-storage / libvirt-N-format, N counting down), each under a virtio-blk
 * device whose id is oVirt's alias `ua-<disk id>` and whose serial is the disk id. Two QMP
 * monitors: the product's and the simulator's own (guest writes as HMP qemu-io on the device
 * backend, so they dirty bitmaps exactly like guest I/O).
 */
export class SimQemu {
  private child: ChildProcess | undefined;
  private qmp: QmpClient | undefined;
  private logOffset = 0;
  private stopping = false;
  private exited = false;
  private nextNode: number;
  private readonly exitWaiters: Array<() => void> = [];

  private constructor(private readonly p: QemuLaunch) {
    this.nextNode = p.disks.length + 1;
  }

  static async launch(p: QemuLaunch): Promise<SimQemu> {
    for (const sock of [p.productQmp, p.privateQmp, ...(p.guestAgentSocket ? [p.guestAgentSocket] : [])]) {
      if (Buffer.byteLength(sock) > 100) throw new Error(`unix socket path too long for qemu: ${sock}`);
      await fs.rm(sock, { force: true });
    }
    const q = new SimQemu(p);
    await q.spawn();
    return q;
  }

  get running(): boolean {
    return !this.exited;
  }

  private async spawn(): Promise<void> {
    const p = this.p;
    const args = ['-name', `guest=${p.name},debug-threads=on`, '-uuid', p.vmId, '-M', 'q35', '-S', '-m', String(p.memoryMiB), '-nodefaults'];
    args.push('-display', 'none', '-accel', 'tcg', '-no-user-config');
    args.push('-qmp', `unix:${p.productQmp},server=on,wait=off`, '-qmp', `unix:${p.privateQmp},server=on,wait=off`);
    p.disks.forEach((d, i) => args.push(...diskArgs(d, p.disks.length - i)));
    if (p.guestAgentSocket) {
      args.push('-device', 'virtio-serial-pci,id=virtio-serial0');
      args.push('-chardev', `socket,id=charchannel0,path=${p.guestAgentSocket},server=on,wait=off`);
      args.push('-device', 'virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0');
    }
    const log = await fs.open(p.logFile, 'a');
    this.logOffset = (await log.stat()).size;
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', log.fd, log.fd] });
    this.child = child;
    await log.close();
    child.once('exit', (code, signal) => {
      this.exited = true;
      void this.qmp?.close();
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      p.onExit(why, this.stopping);
      for (const w of this.exitWaiters.splice(0)) w();
    });
    try {
      await waitForSockets([p.productQmp, p.privateQmp, ...(p.guestAgentSocket ? [p.guestAgentSocket] : [])], () => (this.exited ? this.readLog().trim() : undefined));
    } catch (err) {
      if (!this.exited) child.kill('SIGKILL');
      throw new Error(`vm ${p.name}: ${(err as Error).message}`);
    }
    this.qmp = await QmpClient.connectUnix(p.privateQmp, { label: `simulator monitor of ${p.name}` });
  }

  /** The simulator's own monitor (the backup API's QMP work, as libvirt does it for vdsm). */
  get monitor(): QmpClient {
    if (!this.qmp || this.qmp.closed) throw new Error(`vm ${this.p.name} is not running`);
    return this.qmp;
  }

  async hmp(command: string): Promise<string> {
    if (!this.qmp || this.qmp.closed) throw new Error(`vm ${this.p.name} is not running`);
    return this.qmp.execute('human-monitor-command', { 'command-line': command });
  }

  /** Guest I/O on one disk through qemu-io on the virtio backend; errors come from QEMU's log. */
  async qemuIo(diskId: string, cmd: string): Promise<void> {
    this.readLog();
    const out = await this.hmp(`qemu-io -d /machine/peripheral/ua-${diskId}/virtio-backend "${cmd}"`);
    const text = `${out}\n${this.readLog()}`;
    if (/fail|error|invalid|not found/i.test(text)) throw new Error(`qemu-io '${cmd}' on disk ${diskId} of vm ${this.p.name} failed: ${text.trim()}`);
  }

  async guestWrite(diskId: string, offset: number, data: Buffer): Promise<void> {
    const file = path.join(this.p.scratchDir, `write-${randomBytes(6).toString('hex')}.bin`);
    await fs.writeFile(file, data);
    try {
      await this.qemuIo(diskId, `write -s ${file} ${offset} ${data.length}`);
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  /** Hot-plug of a disk attached while the VM runs (blockdev-add + device_add). */
  async hotplug(d: QemuDisk): Promise<void> {
    if (!this.qmp || this.qmp.closed) throw new Error(`vm ${this.p.name} is not running`);
    const n = this.nextNode++;
    await this.qmp.execute('blockdev-add', storageNode(d, n));
    await this.qmp.execute('blockdev-add', formatNode(d, n));
    await this.hmp(`device_add virtio-blk-pci,drive=libvirt-${n}-format,id=ua-${d.diskId},serial=${d.diskId.slice(0, 20)}`);
  }

  /** Power off: QMP quit (QEMU stores persistent bitmaps), SIGKILL if it hangs. */
  async quit(): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const gone = new Promise<void>((r) => this.exitWaiters.push(r));
    await this.qmp?.execute('quit', {}, { timeoutMs: 5000 }).catch(() => undefined);
    const force = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(force);
  }

  /** Test hook: the process dies as in a crash. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.exitWaiters.push(r));
    this.child?.kill(signal);
    await gone;
  }

  private readLog(): string {
    try {
      const all = readFileSync(this.p.logFile);
      const fresh = all.subarray(this.logOffset).toString();
      this.logOffset = all.length;
      return fresh;
    } catch {
      return '';
    }
  }
}

function storageNode(d: QemuDisk, n: number): Record<string, unknown> {
  return { driver: 'file', filename: d.file, 'node-name': `libvirt-${n}-storage`, 'auto-read-only': true, discard: 'unmap' };
}

function formatNode(d: QemuDisk, n: number): Record<string, unknown> {
  return { 'node-name': `libvirt-${n}-format`, 'read-only': d.readOnly, discard: 'unmap', driver: d.format, file: `libvirt-${n}-storage` };
}

function diskArgs(d: QemuDisk, n: number): string[] {
  return [
    '-blockdev',
    JSON.stringify(storageNode(d, n)),
    '-blockdev',
    JSON.stringify(formatNode(d, n)),
    '-device',
    `virtio-blk-pci,drive=libvirt-${n}-format,id=ua-${d.diskId},serial=${d.diskId.slice(0, 20)}`,
  ];
}
