import { randomBytes } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { isErrno } from './atomicFile';
import { vmKeyOfLockFile } from './layout';

/** Content of `locks/vm-<key>.lock` (FORMAT.md §8). */
export interface LockInfo {
  vmKey: string;
  pid: number;
  hostname: string;
  /** Linux boot id of the holder's machine: a lock from an earlier boot is stale. */
  bootId: string | null;
  startedAt: string;
  pointId: string | null;
  /** Random; tells this acquisition apart from any later one with the same pid. */
  nonce: string;
}

/** A lock file that is still empty this long after its creation was left by a crash. */
const EMPTY_LOCK_GRACE_MS = 10_000;

let cachedBootId: string | null | undefined;
/** This machine's boot id (`/proc/sys/kernel/random/boot_id`), null where there is none. */
export function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isErrno(err, 'ESRCH');
  }
}

/** The process that wrote a lock or a lease (FORMAT.md §8, §15). */
export type Holder = Pick<LockInfo, 'pid' | 'hostname' | 'bootId'>;

/** A holder on this host whose process is gone (or whose machine rebooted since) cannot come
 *  back; of a holder on another host nothing can be told from here (false). */
export function holderGone(h: Holder): boolean {
  if (h.hostname !== os.hostname()) return false;
  const boot = bootId();
  if (boot !== null && h.bootId !== null && h.bootId !== boot) return true;
  return !pidAlive(h.pid);
}

/** A lock whose holder is gone: a new writer may take it over. */
export function isStale(info: LockInfo): boolean {
  return holderGone(info);
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.nonce === 'string') return v as LockInfo;
  } catch {
    // fall through
  }
  return undefined;
}

/** The lock file's holder (`info` undefined if the file is empty or not a lock we understand),
 *  or null if there is no lock. */
export async function readLock(file: string): Promise<{ info: LockInfo | undefined; mtimeMs: number } | null> {
  try {
    const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    return { info: parseLock(text), mtimeMs: st.mtimeMs };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `reading lock ${file} failed`, { cause: err });
  }
}

function describeHolder(what: string, info: LockInfo | undefined): string {
  if (!info) return `${what} is locked by another writer (lock file not readable yet)`;
  return (
    `${what} is locked by pid ${info.pid} on ${info.hostname} since ${info.startedAt}` +
    (info.pointId ? ` (writing point ${info.pointId})` : '')
  );
}

/** The per-VM write lock; released by `release()` (idempotent). */
export class VmLock {
  private released = false;

  constructor(
    readonly file: string,
    readonly info: LockInfo,
  ) {}

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const cur = await readLock(this.file).catch(() => null);
    // Only our own: an operator may have broken it and someone else may hold it now.
    if (cur?.info?.nonce === this.info.nonce) await fs.rm(this.file, { force: true });
  }
}

/**
 * Creates the lock file with O_EXCL. If it exists and its holder is provably dead (same host,
 * pid gone or host rebooted), the stale file is moved aside and the creation retried; otherwise
 * REPO_LOCKED naming the holder.
 */
export async function acquireVmLock(file: string, vmKey: string, pointId: string | null): Promise<VmLock> {
  return acquireLockFile(file, vmKey, pointId, `vm ${vmKey}`);
}

/**
 * A repository-wide lock (`locks/admin.lock`, `locks/gc.lock`): the same file protocol as a VM
 * lock, `vmKey` holding the lock's name. Waits up to `waitMs` for a live holder to let go
 * (these locks are held briefly), then REPO_LOCKED naming the holder.
 */
export async function acquireRepoLock(file: string, name: string, opts: { waitMs?: number } = {}): Promise<VmLock> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await acquireLockFile(file, name, null, `the repository's ${name} lock`);
    } catch (err) {
      if (!isAppError(err, 'REPO_LOCKED') || Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** A VM lock whose holder may still be writing (FORMAT.md §8, §13). */
export interface LiveVmLock {
  vmKey: string;
  info: LockInfo | undefined;
  /** When the holder took the lock (its `startedAt`; the file's mtime while still empty). */
  startedAtMs: number;
}

/** Every `locks/vm-*.lock` whose holder is not provably gone; locks of other hosts count as live. */
export async function liveVmLocks(locksDir: string): Promise<LiveVmLock[]> {
  let names: string[];
  try {
    names = await fs.readdir(locksDir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new AppError('REPO_IO_ERROR', `listing locks in ${locksDir} failed`, { cause: err });
  }
  const out: LiveVmLock[] = [];
  for (const name of names) {
    const vmKey = vmKeyOfLockFile(name);
    if (vmKey === undefined) continue;
    const cur = await readLock(path.join(locksDir, name));
    if (cur === null) continue;
    if (cur.info) {
      if (isStale(cur.info)) continue;
      const t = Date.parse(cur.info.startedAt);
      out.push({ vmKey, info: cur.info, startedAtMs: Number.isNaN(t) ? cur.mtimeMs : Math.min(t, cur.mtimeMs) });
    } else if (Date.now() - cur.mtimeMs <= EMPTY_LOCK_GRACE_MS) {
      out.push({ vmKey, info: undefined, startedAtMs: cur.mtimeMs });
    }
  }
  return out;
}

async function acquireLockFile(file: string, vmKey: string, pointId: string | null, what: string): Promise<VmLock> {
  const info: LockInfo = {
    vmKey,
    pid: process.pid,
    hostname: os.hostname(),
    bootId: bootId(),
    startedAt: new Date().toISOString(),
    pointId,
    nonce: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(file, 'wx', 0o644);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw new AppError('REPO_IO_ERROR', `creating lock ${file} failed`, { cause: err });
    }
    if (fh) {
      try {
        await fh.writeFile(JSON.stringify(info) + '\n');
      } finally {
        await fh.close();
      }
      return new VmLock(file, info);
    }
    const cur = await readLock(file);
    if (cur === null) continue; // released meanwhile
    const stale = cur.info ? isStale(cur.info) : Date.now() - cur.mtimeMs > EMPTY_LOCK_GRACE_MS;
    if (!stale) {
      throw new AppError('REPO_LOCKED', describeHolder(what, cur.info), { details: { vmKey, holder: cur.info ?? null } });
    }
    await takeOver(file, cur.info);
  }
  throw new AppError('REPO_LOCKED', `${what}: lock ${file} keeps changing hands`, { details: { vmKey } });
}

/** Moves a stale lock aside. Rename is atomic, so of two processes taking over the same stale
 *  lock only one moves it; if what we moved turns out to be a fresh lock, we put it back. */
async function takeOver(file: string, stale: LockInfo | undefined): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw new AppError('REPO_IO_ERROR', `moving stale lock ${file} aside failed`, { cause: err });
  }
  const moved = await readLock(aside);
  if (moved?.info && stale && moved.info.nonce !== stale.nonce) {
    await fs.link(aside, file).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}

/** Operator action (CLI `unlock`): removes the lock whoever holds it. Returns the former holder. */
export async function breakVmLock(file: string): Promise<LockInfo | null> {
  const cur = await readLock(file);
  if (cur === null) return null;
  await fs.rm(file, { force: true });
  return cur.info ?? null;
}
