import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { NbdClient, type NbdConnectOptions } from '../nbd';
import { GuestAgentClient, QmpClient, type GuestAgent, type QmpSession } from '../qmp';
import { sleep } from '../util/abort';
import { runTool } from '../util/exec';
import type { VmHostLink } from './vmHost';

/**
 * The VM's QEMU runs on this machine. With `qmpDir`, a VM's monitor is the unix socket
 * `<qmpDir>/<vm id>.qmp` (how the engine simulator, and a QEMU started with
 * `-qmp unix:<dir>/<id>.qmp,server=on,wait=off`, expose it), and its guest agent channel the
 * unix socket `<qmpDir>/<vm id>.qga` (`-chardev socket,path=…,server=on,wait=off,id=qga0` with
 * `-device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0`), or `guestAgentSocket(vm)`.
 */
export class LocalHost implements VmHostLink {
  readonly name = 'local';
  readonly nbdConnections = 1;

  constructor(private readonly opts: { qmpDir?: string; guestAgentSocket?: (vm: { id: string; name: string }) => string } = {}) {}

  async openGuestAgent(vm: { id: string; name: string }, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GuestAgent> {
    let socket: string;
    if (this.opts.guestAgentSocket) socket = this.opts.guestAgentSocket(vm);
    else if (this.opts.qmpDir) socket = path.join(this.opts.qmpDir, `${vm.id}.qga`);
    else throw new AppError('QGA_UNAVAILABLE', `no qmp directory configured to find vm ${vm.name}'s guest agent channel`);
    return GuestAgentClient.connectUnix(socket, { label: `guest agent of vm ${vm.name} (${socket})`, ...o });
  }

  /** Waits (default 30 s) for the socket to appear: a VM just started takes a moment. */
  async openQmp(vm: { id: string; name: string }, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpSession> {
    if (!this.opts.qmpDir) throw new AppError('INVALID_ARGUMENT', `no qmp directory configured to find vm ${vm.name}'s monitor`);
    const socket = path.join(this.opts.qmpDir, `${vm.id}.qmp`);
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    for (;;) {
      try {
        return await QmpClient.connectUnix(socket, { label: `vm ${vm.name} (${socket})`, ...(o.signal ? { signal: o.signal } : {}) });
      } catch (err) {
        const missing = err instanceof AppError && err.code === 'QMP_CONNECT_FAILED';
        if (!missing || Date.now() > deadline || o.signal?.aborted) throw err;
        await sleep(100);
      }
    }
  }

  async createScratchImage(file: string, virtualSize: number, signal?: AbortSignal): Promise<void> {
    // No backing file in the image: the live node is attached as backing at blockdev-add
    // time, which keeps QEMU from opening the disk's file a second time.
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(virtualSize)], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  }

  async removeFile(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  async makeScratchDir(parent: string, prefix: string): Promise<string> {
    await fs.mkdir(parent, { recursive: true, mode: 0o700 });
    return fs.mkdtemp(path.join(parent, prefix));
  }

  async removeDir(dir: string): Promise<void> {
    await fs.rm(dir, { recursive: true, force: true });
  }

  connectNbd(socketPath: string, opts: NbdConnectOptions): Promise<NbdClient> {
    return NbdClient.connectUnix(socketPath, opts);
  }
}
