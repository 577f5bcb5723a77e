import { spawn, type ChildProcess } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { NbdClient } from '../nbd';
import { sleep } from '../util/abort';

/**
 * A private `qemu-nbd` serving one image file on a unix socket: how the restore writes qcow2
 * (qemu-nbd does the format work; our NBD client sends the data).
 */
export class QemuNbdServer {
  private exited: Promise<number | null>;
  private stderr = '';

  private constructor(private readonly child: ChildProcess, readonly socketPath: string, private readonly dir: string) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
  }

  static async start(p: { file: string; format: 'qcow2' | 'raw'; exportName: string; timeoutMs?: number }): Promise<QemuNbdServer> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-nbd-'));
    const socketPath = path.join(dir, 'nbd.sock');
    const child = spawn(
      'qemu-nbd',
      ['-f', p.format, '-x', p.exportName, '-k', socketPath, '--cache=writeback', '--discard=unmap', p.file],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const server = new QemuNbdServer(child, socketPath, dir);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + (p.timeoutMs ?? 15_000);
    for (;;) {
      if (await exists(socketPath)) return server;
      const early = await Promise.race([spawnError, server.exited.then((c) => c), sleep(20).then(() => 'wait' as const)]);
      if (early instanceof Error) {
        await server.cleanupDir();
        const why = (early as NodeJS.ErrnoException).code === 'ENOENT' ? 'qemu-nbd is not installed' : early.message;
        throw new AppError('TOOL_FAILED', `cannot start qemu-nbd for ${p.file}: ${why}`, { cause: early });
      }
      if (early !== 'wait') {
        await server.cleanupDir();
        throw new AppError('TOOL_FAILED', `qemu-nbd for ${p.file} exited (${String(early)}): ${server.stderr.trim()}`);
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new AppError('TOOL_FAILED', `qemu-nbd for ${p.file} did not open its socket in time`);
      }
    }
  }

  /**
   * The one client this server takes. The socket file appears at bind(), before listen(): a
   * connection in between is refused (seen on a loaded CI machine), so refusals are retried while
   * qemu-nbd lives, until the deadline. (A readiness probe is not possible: qemu-nbd exits after
   * its first client disconnects.)
   */
  async connect(exportName: string, timeoutMs = 15_000): Promise<NbdClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await NbdClient.connectUnix(this.socketPath, { exportName });
      } catch (err) {
        const refused = isAppError(err, 'NBD_CONNECT_FAILED') && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
        const alive = this.child.exitCode === null && this.child.signalCode === null;
        if (!refused || !alive || Date.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }

  /** qemu-nbd exits by itself after its last client disconnects; wait for that, then force. */
  async stop(timeoutMs = 10_000): Promise<void> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        const graceful = setTimeout(() => this.child.kill('SIGTERM'), Math.min(2000, timeoutMs / 2));
        await this.exited;
        clearTimeout(graceful);
      }
    } finally {
      clearTimeout(t);
      await this.cleanupDir();
    }
  }

  private async cleanupDir(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}
