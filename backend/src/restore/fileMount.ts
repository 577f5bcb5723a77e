/**
 * A filesystem of a restore point mounted read-only on a host folder (`olvm-backup mount`): the
 * disk served by our NBD server on a private unix socket under a read lease (purpose `browse`),
 * and `guestmount --ro` (FUSE, no root needed) reading it through libguestfs. The mount is
 * ready when the folder shows in /proc/self/mountinfo; close() unmounts (fusermount -u), waits
 * for guestmount to end (SIGKILL and a lazy unmount after 30 s), stops the server and releases
 * the lease. guestmount dies with this process (setpriv --pdeathsig).
 */
import { spawn, type ChildProcess } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, describeError } from '../errors';
import { NbdServer } from '../nbd';
import type { Repository } from '../repository';
import { runTool } from '../util/exec';
import type { Logger } from '../util/log';
import { kvmUsable } from './bootVm';
import { applianceCache, checkedSocketPath } from './fileBrowseFish';
import { PointExport } from './pointExport';

const SETPRIV = '/usr/bin/setpriv';
const MOUNT_TIMEOUT_MS = 300_000;

export interface PointMountOptions {
  repository: Pick<Repository, 'openPoint'>;
  pointId: string;
  disk: string;
  /** libguestfs' name of the filesystem (`/dev/sda1`…); default: inspect the disk for an OS (`-i`). */
  filesystem?: string;
  dir: string;
  actor: string;
  accel?: 'auto' | 'kvm' | 'tcg';
  workDir?: string;
  log?: Logger;
}

export class PointMount {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly child: Guestmount,
    private readonly server: NbdServer,
    private readonly exported: PointExport,
    private readonly privateDir: string,
    readonly dir: string,
  ) {}

  static async open(opts: PointMountOptions): Promise<PointMount> {
    const dir = path.resolve(opts.dir);
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new AppError('INVALID_ARGUMENT', `${dir} is not a folder`);
    if (await mounted(dir)) throw new AppError('INVALID_ARGUMENT', `something is already mounted on ${dir}`);
    const privateDir = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), 'olvm-mount-'));
    await fs.chmod(privateDir, 0o700);
    let exported: PointExport | undefined;
    let server: NbdServer | undefined;
    try {
      exported = await PointExport.open({ repository: opts.repository, pointId: opts.pointId, disk: opts.disk, purpose: 'browse', holder: `${opts.actor} mount on ${dir}`, ...(opts.log ? { log: opts.log } : {}) });
      const socket = checkedSocketPath(privateDir, path.join(privateDir, 'nbd.sock'));
      server = await NbdServer.start({ exports: [{ name: 'd0', source: exported }], listen: { socket }, ...(opts.log ? { log: opts.log } : {}) });
      const want = opts.accel ?? 'auto';
      const first = want === 'tcg' || (want === 'auto' && !(await kvmUsable())) ? 'tcg' : 'kvm';
      let child: Guestmount;
      try {
        child = await Guestmount.start(socket, dir, opts.filesystem, first, privateDir);
      } catch (err) {
        if (first !== 'kvm' || want !== 'auto') throw err;
        opts.log?.warn({ err: describeError(err) }, 'guestmount failed under kvm: trying tcg');
        child = await Guestmount.start(socket, dir, opts.filesystem, 'tcg', privateDir);
      }
      return new PointMount(child, server, exported, privateDir, dir);
    } catch (err) {
      await server?.close().catch(() => undefined);
      await exported?.close().catch(() => undefined);
      await fs.rm(privateDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Unmounts, stops guestmount, the server and the lease. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.child.unmount(this.dir);
      } finally {
        await this.server.close().catch(() => undefined);
        await this.exported.close().catch(() => undefined);
        await fs.rm(this.privateDir, { recursive: true, force: true });
      }
    })();
    return this.closing;
  }
}

class Guestmount {
  private exitInfo: string | undefined;
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
        resolve();
      }),
    );
    child.stderr?.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-4000)));
  }

  static async start(socket: string, dir: string, filesystem: string | undefined, accel: 'kvm' | 'tcg', privateDir: string): Promise<Guestmount> {
    const env: NodeJS.ProcessEnv = { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_CACHEDIR: applianceCache(), TMPDIR: privateDir };
    if (accel === 'tcg') env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg';
    else delete env.LIBGUESTFS_BACKEND_SETTINGS;
    const args = ['--ro', '--no-fork', '--format=raw', '-a', `nbd:///d0?socket=${socket}`, ...(filesystem ? ['-m', filesystem] : ['-i']), dir];
    const argv = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', 'guestmount', ...args]] as const : ['guestmount', args] as const;
    const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'], env });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new AppError('TOOL_FAILED', 'guestmount cannot be started (apt-get install libguestfs-tools)', { cause: err })));
    });
    const g = new Guestmount(child);
    const deadline = Date.now() + MOUNT_TIMEOUT_MS;
    for (;;) {
      if (g.exitInfo !== undefined) throw new AppError('TOOL_FAILED', `guestmount ${g.exitInfo} before the mount appeared: ${g.output.trim().split('\n').slice(-3).join(' / ')}`);
      if (await mounted(dir)) return g;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await g.exited;
        await runTool('fusermount', ['-uz', dir]).catch(() => undefined);
        throw new AppError('TIMEOUT', `guestmount did not mount ${dir} within ${MOUNT_TIMEOUT_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async unmount(dir: string): Promise<void> {
    if (this.exitInfo === undefined) {
      await runTool('fusermount', ['-u', dir], { timeoutMs: 30_000 }).catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (await mounted(dir)) await runTool('fusermount', ['-uz', dir], { timeoutMs: 30_000 });
  }
}

/** Whether `dir` is a mount point now (/proc/self/mountinfo, octal escapes decoded). */
async function mounted(dir: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) === dir);
}
