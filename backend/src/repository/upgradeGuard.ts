/**
 * The in-place upgrade holds the repository alone (FORMAT.md §22). It takes `locks/gc.lock` (no
 * collection), `locks/admin.lock` (no deletion, prune or lock change) and the VM lock of every
 * VM the repository knows (a format-1 writer in a process that opened the repository before the
 * upgrade began fails with REPO_LOCKED instead of writing chunk files that are about to go), and
 * it refuses to start while another writer holds a VM lock or a reader holds a live lease: the
 * operator stops the service first. This module takes and releases those locks and names what
 * stands in the way.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, isAppError } from '../errors';
import { readdirOrEmpty } from './atomicFile';
import { ADMIN_LOCK_FILE, GC_LOCK_FILE, isSafeName, LOCKS_DIR, lockPath, TMP_DIR, vmKeyOfLockFile } from './layout';
import { liveLeases } from './leases';
import { acquireRepoLock, acquireVmLock, liveVmLocks, type VmLock } from './locks';
import { readManifestFile } from './manifest';
import { pointDirs } from './upgradePoints';

/** How long the upgrade waits for a deletion or lock change to finish (they hold admin.lock briefly). */
const ADMIN_WAIT_MS = 60_000;

export interface Exclusive {
  /** The nonces of the VM locks this upgrade holds (not "another writer"). */
  readonly own: ReadonlySet<string>;
  release(): Promise<void>;
}

/** Who else uses the repository now: live VM locks not held by `own`, live read leases. */
export async function blockers(root: string, own: ReadonlySet<string> = new Set()): Promise<string[]> {
  const out: string[] = [];
  for (const l of await liveVmLocks(path.join(root, LOCKS_DIR))) {
    if (l.info && own.has(l.info.nonce)) continue;
    const who = l.info ? `pid ${l.info.pid} on ${l.info.hostname} since ${l.info.startedAt}` : '';
    if (!l.info) out.push(`a backup of vm ${l.vmKey} that is just starting`);
    else if (l.info.pointId) out.push(`a backup of vm ${l.vmKey} (${who}, point ${l.info.pointId})`);
    // writers always name their point: a lock without one is an upgrade's (perhaps one that
    // died on another host, whose locks nothing here can judge stale)
    else out.push(`the lock of vm ${l.vmKey} held without a point (${who}): an upgrade's, running or interrupted there; if it is not running, remove ${path.join(LOCKS_DIR, `vm-${l.vmKey}.lock`)}`);
  }
  for (const l of await liveLeases(root)) out.push(`a ${l.purpose} of point ${l.pointId} (${l.holder}, pid ${l.pid} on ${l.hostname} since ${l.startedAt})`);
  return out;
}

export function inUseError(root: string, found: readonly string[], more = ''): AppError {
  return new AppError(
    'REPO_LOCKED',
    `repository ${root} is in use: ${found.join('; ')}. Stop the backup service and every other olvm-backup command using this repository, then run the upgrade again${more}`,
    { details: { blockers: found } },
  );
}

/** Takes the locks (see the module comment); REPO_LOCKED naming whatever is in the way. */
export async function takeExclusive(root: string): Promise<Exclusive> {
  await fs.mkdir(path.join(root, LOCKS_DIR), { recursive: true });
  const held: VmLock[] = [];
  const releaseAll = async (): Promise<void> => {
    for (const l of held.reverse()) await l.release().catch(() => undefined);
  };
  try {
    held.push(await acquireRepoLock(path.join(root, LOCKS_DIR, GC_LOCK_FILE), 'gc').catch((err: unknown) => {
      throw isAppError(err, 'REPO_LOCKED') ? inUseError(root, [`a garbage collection (${err.message})`]) : err;
    }));
    held.push(await acquireRepoLock(path.join(root, LOCKS_DIR, ADMIN_LOCK_FILE), 'admin', { waitMs: ADMIN_WAIT_MS }));
    const found = await blockers(root);
    if (found.length > 0) throw inUseError(root, found);
    for (const vmKey of await knownVms(root)) {
      try {
        held.push(await acquireVmLock(lockPath(root, vmKey), vmKey, null));
      } catch (err) {
        // started between the look and the lock
        if (isAppError(err, 'REPO_LOCKED')) throw inUseError(root, [err.message]);
        throw err;
      }
    }
  } catch (err) {
    await releaseAll();
    throw err;
  }
  const own = new Set(held.map((l) => l.info.nonce));
  return { own, release: releaseAll };
}

/** Every VM key the repository names: in points/ and trash/, in tmp/, in locks/. */
async function knownVms(root: string): Promise<string[]> {
  const keys = new Set<string>();
  for (const p of await pointDirs(root)) {
    const m = await readManifestFile(p.dir, p.pointId).catch(() => undefined);
    if (m && isSafeName(m.vm.key)) keys.add(m.vm.key);
  }
  for (const name of await readdirOrEmpty(path.join(root, TMP_DIR))) if (isSafeName(name)) keys.add(name);
  for (const name of await readdirOrEmpty(path.join(root, LOCKS_DIR))) {
    const key = vmKeyOfLockFile(name);
    if (key !== undefined) keys.add(key);
  }
  return [...keys].sort();
}

