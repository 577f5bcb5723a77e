import { promises as fs } from 'fs';
import * as path from 'path';
import { NbdClient, type NbdConnectOptions } from '../nbd';
import { runTool } from '../util/exec';
import type { HostLink } from './hostLink';

/** The VM's QEMU runs on this machine. */
export class LocalHost implements HostLink {
  readonly name = 'local';

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
