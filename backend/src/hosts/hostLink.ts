import type { NbdClient, NbdConnectOptions } from '../nbd';

/**
 * How the backup reaches the machine a VM's QEMU runs on, apart from QMP: scratch files QEMU
 * can open, and NBD streams to sockets QEMU listens on. Local today; SSH-tunnelled later.
 */
export interface HostLink {
  readonly name: string;
  /** NBD connections a disk copy should open: one is enough locally; through a tunnel each
   *  channel is capped (SSH: ~200 MiB/s per channel, 4 channels measured 2.2× faster). */
  readonly nbdConnections: number;
  /** Creates an empty qcow2 of `virtualSize` bytes at `path` on the host (the fleece target). */
  createScratchImage(path: string, virtualSize: number, signal?: AbortSignal): Promise<void>;
  /** Removes a file on the host; a file already gone is not an error. */
  removeFile(path: string): Promise<void>;
  /** Creates a private directory on the host for scratch files and sockets; returns its path. */
  makeScratchDir(parent: string, prefix: string): Promise<string>;
  removeDir(path: string): Promise<void>;
  connectNbd(socketPath: string, opts: NbdConnectOptions): Promise<NbdClient>;
}
