/**
 * The appliance of a browse session: the point's disks served read-only by our NBD server on a
 * unix socket in a private 0700 directory (each under a read lease, purpose `browse`), one
 * guestfish with every disk added `readonly:true` over `protocol:nbd`, launched once, and each
 * filesystem it finds mounted read-only under its own mount point (`/m0`, `/m1`…; nothing is
 * mounted at `/`, so a realpath outside a mount point is outside every filesystem). A
 * filesystem that will not mount (corrupt, damaged chunks, unknown) is listed with the reason;
 * the others stay usable. Everything is undone by close().
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, describeError } from '../errors';
import { NbdServer } from '../nbd';
import type { Repository } from '../repository';
import type { Logger } from '../util/log';
import { kvmUsable } from './bootVm';
import { checkedSocketPath, Fish, fishQuote } from './fileBrowseFish';
import { findDisk, PointExport } from './pointExport';

const LAUNCH_TIMEOUT_MS = 300_000;
const STEP_TIMEOUT_MS = 120_000;

export interface BrowseFilesystem {
  /** libguestfs' name: `/dev/sda1`, `/dev/vg0/lv0` (disks in the point's order: sda, sdb…). */
  device: string;
  /** ext4, xfs, vfat, ntfs… as libguestfs detects it. */
  type: string;
  label: string | null;
  /** Bytes, when known. */
  size: number | null;
  mounted: boolean;
  /** Why it is not mounted. */
  error: string | null;
}

export interface BrowseDisk {
  /** The point's device id (vda…) and the appliance's name for it (/dev/sda…). */
  device: string;
  applianceDevice: string;
  size: number;
}

export interface BrowseLayout {
  disks: BrowseDisk[];
  partitions: string[];
  logicalVolumes: string[];
  filesystems: BrowseFilesystem[];
  /** Operating systems inspection found: root filesystem and its name. */
  systems: Array<{ root: string; type: string; product: string }>;
  /** How long the appliance took to start, and inspection and mounting after it. */
  timings: { launchMs: number; mountMs: number };
}

export interface ApplianceOptions {
  repository: Pick<Repository, 'openPoint' | 'readManifest'>;
  pointId: string;
  /** Only these disks (device, disk id or alias); default every disk of the point. */
  disks?: readonly string[];
  /** Who reads (the lease's holder names them). */
  actor: string;
  accel?: 'auto' | 'kvm' | 'tcg';
  /** Also run libguestfs' OS inspection (fills `systems`; ~40 s more under TCG for four filesystems). */
  inspect?: boolean;
  workDir?: string;
  log?: Logger;
}

export class Appliance {
  private constructor(
    readonly dir: string,
    readonly fish: Fish,
    private readonly server: NbdServer,
    private readonly exports: PointExport[],
    readonly layout: BrowseLayout,
    /** device → its mount point in the appliance. */
    readonly mounts: ReadonlyMap<string, string>,
  ) {}

  static async open(opts: ApplianceOptions): Promise<Appliance> {
    const manifest = await opts.repository.readManifest(opts.pointId);
    const chosen = opts.disks?.length
      ? opts.disks.map((w) => {
          const d = findDisk(manifest.disks, w);
          if (!d) throw new AppError('REPO_DISK_NOT_FOUND', `point ${opts.pointId} has no disk '${w}' (it has: ${manifest.disks.map((x) => x.device).join(', ')})`);
          return d;
        })
      : manifest.disks;
    const dir = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), 'olvm-browse-'));
    await fs.chmod(dir, 0o700);
    const exports: PointExport[] = [];
    let server: NbdServer | undefined;
    let fish: Fish | undefined;
    try {
      for (const d of chosen) {
        exports.push(await PointExport.open({ repository: opts.repository, pointId: opts.pointId, disk: d.device, purpose: 'browse', holder: `${opts.actor} file browsing`, ...(opts.log ? { log: opts.log } : {}) }));
      }
      const socket = path.join(dir, 'nbd.sock');
      server = await NbdServer.start({ exports: exports.map((e, i) => ({ name: `d${i}`, source: e })), listen: { socket }, ...(opts.log ? { log: opts.log } : {}) });
      const t0 = Date.now();
      const want = opts.accel ?? 'auto';
      const first = want === 'tcg' || (want === 'auto' && !(await kvmUsable())) ? 'tcg' : 'kvm';
      try {
        fish = await launch(dir, socket, exports.length, first);
      } catch (err) {
        // a KVM that cannot run the appliance is the host's problem: emulate instead
        if (first !== 'kvm' || want !== 'auto') throw err;
        opts.log?.warn({ err: describeError(err) }, 'the browse appliance failed under kvm: launching it under tcg');
        fish = await launch(dir, socket, exports.length, 'tcg');
      }
      const disks = exports.map((e, i) => ({ device: e.disk.device, applianceDevice: `/dev/sd${String.fromCharCode(97 + i)}`, size: e.size }));
      const t1 = Date.now();
      const { layout, mounts } = await mountAll(fish, disks, opts.log, t1 - t0, opts.inspect ?? false);
      layout.timings.mountMs = Date.now() - t1;
      opts.log?.info({ pointId: opts.pointId, ...layout.timings }, 'browse appliance ready');
      return new Appliance(dir, fish, server, exports, layout, mounts);
    } catch (err) {
      await fish?.close().catch(() => undefined);
      await server?.close().catch(() => undefined);
      for (const e of exports) await e.close().catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** guestfish (and with it the appliance), the NBD server, the leases, the directory. Idempotent. */
  async close(): Promise<void> {
    try {
      await this.fish.close();
    } finally {
      await this.server.close().catch(() => undefined);
      for (const e of this.exports) await e.close().catch(() => undefined);
      await fs.rm(this.dir, { recursive: true, force: true });
    }
  }
}

async function launch(dir: string, socket: string, disks: number, accel: 'kvm' | 'tcg'): Promise<Fish> {
  const tmpDir = path.join(dir, `tmp-${accel}`);
  await fs.mkdir(tmpDir, { mode: 0o700, recursive: true });
  checkedSocketPath(dir, socket);
  const fish = await Fish.start({ accel, tmpDir });
  try {
    for (let i = 0; i < disks; i++) {
      await fish.ok(`add-drive ${fishQuote(`d${i}`)} protocol:nbd server:unix:${socket} format:raw readonly:true`, STEP_TIMEOUT_MS, 'adding the disk to the appliance');
    }
    await fish.ok('run', LAUNCH_TIMEOUT_MS, `launching the libguestfs appliance (${accel})`);
    return fish;
  } catch (err) {
    await fish.close();
    throw err;
  }
}

/** Whole disks without a partition table, then partitions and logical volumes. */
async function candidates(fish: Fish, partitions: string[], lvs: string[]): Promise<string[]> {
  const devices = lines(await fish.ok('list-devices', STEP_TIMEOUT_MS, 'listing devices'));
  const bare = devices.filter((d) => !partitions.some((p) => p.startsWith(d)));
  return [...bare, ...partitions, ...lvs];
}

function lines(b: Buffer): string[] {
  return b.toString('utf8').split('\n').filter((l) => l.trim() !== '');
}

async function mountAll(fish: Fish, disks: BrowseDisk[], log: Logger | undefined, launchMs: number, inspect: boolean): Promise<{ layout: BrowseLayout; mounts: Map<string, string> }> {
  const partitions = lines(await fish.ok('list-partitions', STEP_TIMEOUT_MS, 'listing partitions'));
  const lvs = lines((await fish.run('lvs', STEP_TIMEOUT_MS)).output).filter((l) => l.startsWith('/dev/'));
  const systems: BrowseLayout['systems'] = [];
  const roots = inspect ? await fish.run('inspect-os', STEP_TIMEOUT_MS) : { output: Buffer.alloc(0), error: 'not asked' };
  if (roots.error === undefined) {
    for (const root of lines(roots.output)) {
      const type = (await fish.run(`inspect-get-type ${fishQuote(root)}`, STEP_TIMEOUT_MS)).output.toString().trim();
      const product = (await fish.run(`inspect-get-product-name ${fishQuote(root)}`, STEP_TIMEOUT_MS)).output.toString().trim();
      systems.push({ root, type, product });
    }
  }
  const filesystems: BrowseFilesystem[] = [];
  const mounts = new Map<string, string>();
  // list-filesystems would probe every device for ~30 s under TCG: blkid on each candidate
  // (a disk without partitions, each partition, each logical volume) answers in well under one
  for (const device of await candidates(fish, partitions, lvs)) {
    const probed = await fish.run(`vfs-type ${fishQuote(device)}`, STEP_TIMEOUT_MS);
    const type = probed.error === undefined ? probed.output.toString().trim() || 'unknown' : 'unknown';
    if (type === 'LVM2_member' || (type === 'unknown' && !lvs.includes(device) && !partitions.includes(device))) continue;
    if (type === 'swap') continue;
    const labelled = await fish.run(`vfs-label ${fishQuote(device)}`, STEP_TIMEOUT_MS);
    const label = labelled.error === undefined ? labelled.output.toString().trim() || null : null;
    const sized = await fish.run(`blockdev-getsize64 ${fishQuote(device)}`, STEP_TIMEOUT_MS);
    const size = sized.error === undefined ? Number(sized.output.toString().trim()) : null;
    const fsEntry: BrowseFilesystem = { device, type, label, size, mounted: false, error: null };
    filesystems.push(fsEntry);
    if (type === 'unknown') {
      fsEntry.error = 'no filesystem libguestfs recognises';
      continue;
    }
    const mp = `/m${filesystems.length - 1}`;
    await fish.ok(`mkmountpoint ${mp}`, STEP_TIMEOUT_MS, 'making a mount point');
    let r = await fish.run(`mount-ro ${fishQuote(device)} ${mp}`, STEP_TIMEOUT_MS);
    // a filesystem backed up while mounted has a log to replay, which a read-only mount of
    // xfs or ext4 refuses or would need to write: mount it as it is on disk instead
    const retry = type === 'xfs' ? 'ro,norecovery' : /^ext[34]$/.test(type) ? 'ro,noload' : undefined;
    if (r.error !== undefined && retry) r = await fish.run(`mount-options ${retry} ${fishQuote(device)} ${mp}`, STEP_TIMEOUT_MS);
    if (r.error !== undefined) {
      fsEntry.error = `it does not mount: ${r.error}`;
      log?.warn({ device, type, error: r.error }, 'a filesystem of the browsed point does not mount');
      continue;
    }
    fsEntry.mounted = true;
    mounts.set(device, mp);
  }
  return { layout: { disks, partitions, logicalVolumes: lvs, filesystems, systems, timings: { launchMs, mountMs: 0 } }, mounts };
}
