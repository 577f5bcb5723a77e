/**
 * Read leases (FORMAT.md §15): while a restore, a download or a verify reads a point,
 * `leases/<pointId>.<leaseId>.json` says so to every process sharing the repository. Deletion
 * refuses a leased point, prune defers it, and gc keeps a deleted point's directory in trash/
 * (and so its chunks) while a live lease names it. This module owns the file protocol: taking,
 * renewing and releasing this process's leases, and judging any lease live or dead.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError } from '../errors';
import { describeAccount, effectiveUid } from '../util/accounts';
import { isErrno } from './atomicFile';
import { LEASES_DIR, leasePath, parseLeaseFileName } from './layout';
import { bootId, holderGone } from './locks';
import type { LeasePurpose } from './model';
import type { Lease, LeaseInfo } from './types';

/** A lease not renewed for this long is dead, whoever holds it (a holder on another host, or a
 *  process stopped for that long). */
export const LEASE_TTL_MS = 10 * 60_000;
/** Holders rewrite their leases this often: a tenth of the lifetime, so nine renewals can be
 *  late (a busy event loop, a slow disk) before a live reader loses its lease. */
export const LEASE_RENEW_MS = 60_000;

/** A lease this process holds. */
export interface HeldLease {
  readonly leaseId: string;
  readonly file: string;
  info: LeaseInfo;
  released: boolean;
  /** Every write of this lease's file, one after the other (renewals, the release). */
  writing: Promise<void>;
}

/**
 * The leases of one Repository object: takes them, renews every held lease on one unref'd timer
 * (a forgotten reader does not keep the process alive; its lease ends with the process), and
 * releases them.
 */
export class LeaseKeeper {
  private readonly held = new Set<HeldLease>();
  private timer: NodeJS.Timeout | undefined;
  private dirReady = false;

  /** `timing`: the defaults everywhere but in tests of renewal and expiry. */
  constructor(
    private readonly root: string,
    private readonly timing: { ttlMs: number; renewMs: number } = { ttlMs: LEASE_TTL_MS, renewMs: LEASE_RENEW_MS },
  ) {}

  /** Writes the lease file; the caller reads the point only after this resolved. */
  async take(pointId: string, purpose: LeasePurpose, holder: string): Promise<HeldLease> {
    const leaseId = randomBytes(8).toString('hex');
    const now = Date.now();
    const info: LeaseInfo = {
      pointId,
      purpose,
      holder,
      pid: process.pid,
      hostname: os.hostname(),
      bootId: bootId(),
      startedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.timing.ttlMs).toISOString(),
    };
    const lease: HeldLease = { leaseId, file: leasePath(this.root, pointId, leaseId), info, released: false, writing: Promise.resolve() };
    try {
      if (!this.dirReady) await ensureLeaseDir(this.root);
      this.dirReady = true;
      await writeLeaseFile(lease.file, info).catch(async (err: unknown) => {
        // leases/ was removed since (by hand): made again, once
        if (!isErrno(err, 'ENOENT')) throw err;
        await ensureLeaseDir(this.root);
        await writeLeaseFile(lease.file, info);
      });
    } catch (err) {
      throw leaseWriteError(this.root, pointId, err);
    }
    this.held.add(lease);
    this.timer ??= setInterval(() => this.renewAll(), this.timing.renewMs).unref();
    return lease;
  }

  /** Idempotent, never fails: a lease file that cannot be removed only delays deletions of its
   *  point until it expires. Waits for a renewal in flight, so that it cannot bring it back. */
  async release(lease: HeldLease): Promise<void> {
    if (lease.released) return;
    lease.released = true;
    this.held.delete(lease);
    if (this.held.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    await lease.writing;
    await fs.rm(lease.file, { force: true }).catch(() => undefined);
  }

  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map((l) => this.release(l)));
  }

  private renewAll(): void {
    for (const lease of this.held) {
      lease.info = { ...lease.info, expiresAt: new Date(Date.now() + this.timing.ttlMs).toISOString() };
      // a failed renewal (disk full, say) is tried again at the next tick; nine may fail
      this.write(lease).catch(() => undefined);
    }
  }

  private write(lease: HeldLease): Promise<void> {
    const next = lease.writing.then(async () => {
      if (!lease.released) await writeLeaseFile(lease.file, lease.info);
    });
    lease.writing = next.catch(() => undefined);
    return next;
  }
}

/** Every lease file of the repository (of one point, if given), live or not. */
export async function readLeases(root: string, pointId?: string): Promise<Array<{ file: string; lease: Lease | undefined; live: boolean }>> {
  const dir = path.join(root, LEASES_DIR);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new AppError('REPO_IO_ERROR', `listing the read leases in ${dir} failed`, { cause: err });
  }
  const now = Date.now();
  const out: Array<{ file: string; lease: Lease | undefined; live: boolean }> = [];
  for (const name of names.sort()) {
    const id = parseLeaseFileName(name);
    if (!id || (pointId !== undefined && id.pointId !== pointId)) continue;
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue; // released meanwhile
      throw new AppError('REPO_IO_ERROR', `reading the read lease ${file} failed`, { cause: err });
    }
    const info = parseLease(text, id.pointId);
    const lease = info ? { ...info, leaseId: id.leaseId } : undefined;
    out.push({ file, lease, live: lease !== undefined && leaseIsLive(lease, now) });
  }
  return out;
}

/** The live leases (of one point, if given), the oldest first. */
export async function liveLeases(root: string, pointId?: string): Promise<Lease[]> {
  const all = await readLeases(root, pointId);
  return all
    .filter((l) => l.live)
    .map((l) => l.lease as Lease)
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
}

/**
 * A lease is live until its expiry, unless its holder is provably gone (same host: pid or boot
 * changed, as for locks, FORMAT.md §8). Files are written whole (temp + rename), so one that
 * cannot be parsed was not written by this protocol and protects nothing.
 */
export function leaseIsLive(l: LeaseInfo, nowMs: number = Date.now()): boolean {
  const expires = Date.parse(l.expiresAt);
  if (!(expires > nowMs)) return false;
  return !holderGone(l);
}

/** gc: removes the files of dead leases and temp files a crashed holder left; returns how many. */
export async function removeDeadLeases(root: string): Promise<number> {
  const dir = path.join(root, LEASES_DIR);
  let n = 0;
  for (const l of await readLeases(root)) {
    if (l.live) continue;
    await fs.rm(l.file, { force: true });
    n++;
  }
  let names: string[] = [];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new AppError('REPO_IO_ERROR', `listing the read leases in ${dir} failed`, { cause: err });
  }
  for (const name of names.filter((x) => x.startsWith('.'))) {
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > LEASE_TTL_MS) {
      await fs.rm(path.join(dir, name), { force: true });
      n++;
    }
  }
  return n;
}

/** REPO_POINT_LEASED: names what reads the point and since when, not who. */
export function leasedError(what: string, point: { pointId: string; vmKey: string; vmName: string }, leases: readonly Lease[]): AppError {
  const first = leases[0] as Lease;
  const more = leases.length > 1 ? ` and ${leases.length - 1} more reader(s)` : '';
  return new AppError(
    'REPO_POINT_LEASED',
    `${what}: restore point ${point.pointId} of vm ${point.vmName} is being read (${first.purpose} since ${first.startedAt})${more}; try again once it is done`,
    { details: { pointId: point.pointId, vmKey: point.vmKey, leases: leases.map((l) => ({ purpose: l.purpose, since: l.startedAt, expiresAt: l.expiresAt })) } },
  );
}

/**
 * Any non-empty purpose is a lease's: what protects the point is that its holder is live, so a
 * lease a newer program took for a purpose this one does not know still defers deletions and
 * is not removed as dead. Fields this program does not know are left out.
 */
function parseLease(text: string, pointId: string): LeaseInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<Record<keyof LeaseInfo, unknown>>;
    if (
      v.pointId === pointId &&
      typeof v.pid === 'number' &&
      typeof v.hostname === 'string' &&
      typeof v.startedAt === 'string' &&
      typeof v.expiresAt === 'string' &&
      typeof v.purpose === 'string' &&
      v.purpose.trim() !== ''
    ) {
      return {
        pointId,
        purpose: v.purpose,
        holder: typeof v.holder === 'string' ? v.holder : '',
        pid: v.pid,
        hostname: v.hostname,
        bootId: typeof v.bootId === 'string' ? v.bootId : null,
        startedAt: v.startedAt,
        expiresAt: v.expiresAt,
      };
    }
  } catch {
    // not one of ours
  }
  return undefined;
}

/** No fsync: a lease needs no durability, its holder does not outlive a crash either. */
async function writeLeaseFile(file: string, info: LeaseInfo): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    await fs.writeFile(tmp, JSON.stringify(info) + '\n', { flag: 'wx', mode: 0o644 });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * `leases/` is made when first needed, with the repository directory's mode and owner: a root
 * shell restoring from the service account's repository must not leave a directory in which the
 * service can never take a lease again.
 */
async function ensureLeaseDir(root: string): Promise<void> {
  const dir = path.join(root, LEASES_DIR);
  try {
    await fs.mkdir(dir);
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    throw err;
  }
  const top = await fs.stat(root);
  await fs.chmod(dir, top.mode & 0o7777);
  if (effectiveUid() === 0 && top.uid !== 0) await fs.chown(dir, top.uid, top.gid);
}

function leaseWriteError(root: string, pointId: string, err: unknown): AppError {
  const dir = path.join(root, LEASES_DIR);
  if (isErrno(err, 'EACCES', 'EPERM', 'EROFS')) {
    return new AppError(
      'REPO_PERMISSION_DENIED',
      `cannot read point ${pointId}: a reader must first take a read lease in ${dir}, which ${describeAccount(effectiveUid())} may not write ` +
        '(run this as the account that owns the repository, e.g. with sudo -u)',
      { cause: err, details: { dir } },
    );
  }
  return new AppError('REPO_IO_ERROR', `taking a read lease on point ${pointId} in ${dir} failed`, { cause: err });
}
