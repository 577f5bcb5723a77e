import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as path from 'path';
import { QmpClient } from '../../backend/src/qmp';
import { runTool } from '../../backend/src/util/exec';
import { requireTools } from './tools';
import { waitForSockets } from './waitForSockets';

export interface DiskSpec {
  id: string; // qdev id, e.g. virtio-disk0
  format: 'qcow2' | 'raw';
  size: number;
}

/**
 * A real QEMU (q35, TCG, vCPUs never started) with virtio-blk disks opened the way libvirt does
 * (-blockdev, node names libvirt-N-format). It has two QMP sockets: `productQmp` for the code
 * under test, `testQmp` for the test's own "guest" writes (HMP qemu-io on the device backend, so
 * they dirty bitmaps exactly like guest I/O). Every write is mirrored into an in-memory
 * reference of each disk, the oracle restored images are compared with.
 */
export class TestVm {
  readonly reference = new Map<string, Buffer>();
  private child: ChildProcess | undefined;
  private qmp: QmpClient | undefined;
  private logOffset = 0;
  private dataSeq = 0;
  private snapshotSeq = 0;

  private constructor(readonly dir: string, readonly disks: DiskSpec[]) {}

  get productQmp(): string {
    return path.join(this.dir, 'product.qmp');
  }

  private get testQmp(): string {
    return path.join(this.dir, 'test.qmp');
  }

  private get logFile(): string {
    return path.join(this.dir, 'qemu.log');
  }

  diskFile(id: string): string {
    const d = this.disk(id);
    return path.join(this.dir, `${d.id}.${d.format}`);
  }

  static async create(dir: string, disks: DiskSpec[]): Promise<TestVm> {
    requireTools('qemu-system-x86_64', 'qemu-img');
    await fs.mkdir(dir, { recursive: true });
    const vm = new TestVm(dir, disks);
    for (const d of disks) {
      await runTool('qemu-img', ['create', '-q', '-f', d.format, vm.diskFile(d.id), String(d.size)]);
      vm.reference.set(d.id, Buffer.alloc(d.size));
    }
    await vm.start();
    return vm;
  }

  async start(): Promise<void> {
    const args = ['-M', 'q35', '-S', '-m', '128', '-nodefaults', '-display', 'none', '-accel', 'tcg', '-no-user-config'];
    args.push('-qmp', `unix:${this.productQmp},server=on,wait=off`, '-qmp', `unix:${this.testQmp},server=on,wait=off`);
    this.disks.forEach((d, i) => {
      const n = i + 1;
      args.push(
        '-blockdev',
        JSON.stringify({ driver: 'file', filename: this.diskFile(d.id), 'node-name': `libvirt-${n}-storage`, 'auto-read-only': true, discard: 'unmap' }),
        '-blockdev',
        JSON.stringify({ 'node-name': `libvirt-${n}-format`, 'read-only': false, discard: 'unmap', driver: d.format, file: `libvirt-${n}-storage` }),
        '-device',
        `virtio-blk-pci,drive=libvirt-${n}-format,id=${d.id}`,
      );
    });
    await fs.rm(this.productQmp, { force: true });
    await fs.rm(this.testQmp, { force: true });
    const log = await fs.open(this.logFile, 'a');
    this.logOffset = (await log.stat()).size;
    // qemu-io's output (including its errors) goes to QEMU's stdout, not to the QMP reply.
    this.child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    const child = this.child;
    await waitForSockets([this.productQmp, this.testQmp], () => (child.exitCode !== null ? this.readLog() : undefined));
    this.qmp = await QmpClient.connectUnix(this.testQmp, { label: 'test monitor' });
  }

  /** Writes `data` at `offset` as the guest would, and into the reference. */
  async write(id: string, offset: number, data: Buffer): Promise<void> {
    const file = path.join(this.dir, `data-${this.dataSeq++}.bin`);
    await fs.writeFile(file, data);
    try {
      await this.qemuIo(id, `write -s ${file} ${offset} ${data.length}`);
    } finally {
      await fs.rm(file, { force: true });
    }
    data.copy(this.ref(id), offset);
  }

  async writeRandom(id: string, offset: number, length: number): Promise<void> {
    await this.write(id, offset, randomBytes(length));
  }

  async writeZeroes(id: string, offset: number, length: number): Promise<void> {
    await this.qemuIo(id, `write -z ${offset} ${length}`);
    this.ref(id).fill(0, offset, offset + length);
  }

  /** Guest discard; cluster-aligned ranges read back as zeros on qcow2 and raw (hole punch). */
  async discard(id: string, offset: number, length: number): Promise<void> {
    await this.qemuIo(id, `discard ${offset} ${length}`);
    this.ref(id).fill(0, offset, offset + length);
  }

  async flush(id: string): Promise<void> {
    await this.qemuIo(id, 'flush');
  }

  /** Guest-visible growth of a disk (block_resize); the reference grows with zeros. */
  async resize(id: string, size: number): Promise<void> {
    const nodeName = `libvirt-${this.disks.findIndex((d) => d.id === id) + 1}-format`;
    await this.monitor().execute('block_resize', { 'node-name': nodeName, size });
    const old = this.ref(id);
    const grown = Buffer.alloc(size);
    old.copy(grown, 0, 0, Math.min(old.length, size));
    this.reference.set(id, grown);
    this.disk(id).size = size;
  }

  /**
   * An external snapshot, as a manager takes one: a new qcow2 overlay becomes the disk's top
   * node (the guest writes there from now on); the old image becomes its read-only backing.
   * Returns the new top node's name.
   */
  async externalSnapshot(id: string): Promise<string> {
    const nodes = await this.monitor().execute('query-block', {});
    const top = nodes.find((b) => b.qdev === `/machine/peripheral/${id}/virtio-backend`)?.inserted;
    if (!top) throw new Error(`no block device for ${id}`);
    const n = this.snapshotSeq++;
    const overlay = path.join(this.dir, `${id}.snap${n}.qcow2`);
    const node = `snap-${id}-${n}`;
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', top.image.filename, '-F', top.drv, overlay, String(this.disk(id).size)]);
    await this.monitor().execute('blockdev-add', { driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: overlay }, backing: null, discard: 'unmap' });
    await this.monitor().execute('blockdev-snapshot', { node: top['node-name'], overlay: node });
    return node;
  }

  snapshot(id: string): Buffer {
    return Buffer.from(this.ref(id));
  }

  async hmp(command: string): Promise<string> {
    return this.monitor().execute('human-monitor-command', { 'command-line': command });
  }

  async bitmaps(id: string): Promise<Array<{ name: string; recording: boolean; inconsistent?: boolean; persistent: boolean; count: number }>> {
    const nodeName = `libvirt-${this.disks.findIndex((d) => d.id === id) + 1}-format`;
    const nodes = await this.monitor().execute('query-named-block-nodes', { flat: true });
    const all = nodes.find((n) => n['node-name'] === nodeName)?.['dirty-bitmaps'] ?? [];
    // named ones only: a running block job adds an anonymous internal bitmap
    return all.filter((b): b is typeof b & { name: string } => typeof b.name === 'string');
  }

  /** Clean shutdown: QEMU stores persistent bitmaps in qcow2 images. */
  async quit(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    await this.monitor().execute('quit', {}).catch(() => undefined);
    const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(force);
    await this.qmp?.close();
  }

  /** Crash: no bitmap is stored; persistent ones come back inconsistent. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await this.qmp?.close();
  }

  async dispose(): Promise<void> {
    await this.kill();
  }

  private async qemuIo(id: string, cmd: string): Promise<void> {
    this.readLog(); // earlier output (e.g. NBD server messages) is not this command's
    const out = await this.hmp(`qemu-io -d /machine/peripheral/${id}/virtio-backend "${cmd}"`);
    const log = this.readLog();
    const text = `${out}\n${log}`;
    if (/fail|error|invalid/i.test(text)) throw new Error(`qemu-io '${cmd}' on ${id} failed: ${text.trim()}`);
  }

  /** New output in QEMU's log since the last call. */
  private readLog(): string {
    try {
      const all = readFileSync(this.logFile);
      const fresh = all.subarray(this.logOffset).toString();
      this.logOffset = all.length;
      return fresh;
    } catch {
      return '';
    }
  }

  private monitor(): QmpClient {
    if (!this.qmp || this.qmp.closed) throw new Error('test vm is not running');
    return this.qmp;
  }

  private disk(id: string): DiskSpec {
    const d = this.disks.find((x) => x.id === id);
    if (!d) throw new Error(`no disk ${id}`);
    return d;
  }

  private ref(id: string): Buffer {
    const r = this.reference.get(id);
    if (!r) throw new Error(`no disk ${id}`);
    return r;
  }
}
