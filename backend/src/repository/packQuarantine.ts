/**
 * Quarantine of format 2 (FORMAT.md §20): a blob copy verify found corrupt cannot be moved out
 * of its pack (the pack is one immutable file), so it is recorded instead, as the file
 * `quarantine/<blob id hex>.<pack name>`. Every process skips a recorded copy (RepoIndex loads
 * the records on each refresh): readers do not read it, writers do not deduplicate against it —
 * so the next backup that reads the same content stores a good copy in a new pack — and the
 * garbage collection counts it as dead. The collection removes the records of the packs it
 * removes, and those that no longer stand (the pack file was replaced, see readPackQuarantine).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import { packPath, QUARANTINE_DIR } from './layout';

const RECORD = /^([0-9a-f]{64})\.([0-9a-f]{64})$/;

/** The key of a blob copy: `<id hex>.<pack>`, as its record is named. */
export function quarantineKey(idHex: string, pack: string): string {
  return `${idHex}.${pack}`;
}

/**
 * Keys of every recorded copy that still stands (format 1's quarantined chunk files, named
 * differently, are not listed). A record names the pack file it judged by its inode: a writer
 * that stores the same blobs again, in the same order, seals a pack with the same table and so
 * the same name (FORMAT.md §17.2), which replaces the damaged file by one rename — a record of
 * the file it replaced no longer stands.
 * `known` caches what records hold (they never change) across calls.
 */
export async function readPackQuarantine(root: string, known?: Map<string, number | null>): Promise<Set<string>> {
  const out = new Set<string>();
  const packIno = new Map<string, number | null>();
  for (const name of await recordNames(root)) {
    let ino = known?.get(name);
    if (ino === undefined) {
      ino = await recordedIno(root, name);
      known?.set(name, ino);
    }
    const pack = name.slice(65);
    let cur = packIno.get(pack);
    if (cur === undefined) {
      cur = await inoOf(packPath(root, pack));
      packIno.set(pack, cur);
    }
    // no identity recorded, or the pack is gone: the record stands (it only ever hides a copy)
    if (ino === null || cur === null || cur === ino) out.add(name);
  }
  return out;
}

async function recordNames(root: string): Promise<string[]> {
  try {
    return (await fs.readdir(path.join(root, QUARANTINE_DIR))).filter((n) => RECORD.test(n));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw new AppError('REPO_IO_ERROR', `listing ${path.join(root, QUARANTINE_DIR)} failed`, { cause: err });
  }
}

async function recordedIno(root: string, name: string): Promise<number | null> {
  try {
    const r = JSON.parse(await fs.readFile(path.join(root, QUARANTINE_DIR, name), 'utf8')) as Partial<QuarantineRecord>;
    return typeof r.packIno === 'number' ? r.packIno : null;
  } catch {
    return null; // unreadable (or removed meanwhile): the copy stays judged corrupt
  }
}

async function inoOf(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).ino;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `stat ${file} failed`, { cause: err });
  }
}

/** What a record holds; programs read `packIno`, the rest is for the operator. */
export interface QuarantineRecord {
  blob: string;
  pack: string;
  /** The inode of the pack file judged (see readPackQuarantine). */
  packIno: number;
  quarantinedAt: string;
  reason: string;
}

/** Records a corrupt copy (atomically, durably). Returns the record's name, or null if it was
 *  recorded already or its pack is gone. */
export async function quarantineBlob(root: string, idHex: string, pack: string, reason: string): Promise<string | null> {
  const name = quarantineKey(idHex, pack);
  if (!RECORD.test(name)) throw new AppError('INVALID_ARGUMENT', `quarantine: ${JSON.stringify(name)} does not name a blob and a pack`);
  if ((await readPackQuarantine(root)).has(name)) return null;
  const packIno = await inoOf(packPath(root, pack));
  if (packIno === null) return null;
  const dir = path.join(root, QUARANTINE_DIR);
  const record: QuarantineRecord = { blob: idHex, pack, packIno, quarantinedAt: new Date().toISOString(), reason };
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, name), Buffer.from(JSON.stringify(record) + '\n'));
  } catch (err) {
    throw new AppError('REPO_IO_ERROR', `quarantine: recording blob ${idHex} of pack ${pack} failed`, { cause: err });
  }
  return name;
}

/** Removes the records of packs the collection removed, and those that no longer stand. */
export async function tidyQuarantine(root: string, removed: ReadonlySet<string>): Promise<number> {
  const dir = path.join(root, QUARANTINE_DIR);
  const standing = await readPackQuarantine(root);
  let n = 0;
  for (const name of await recordNames(root)) {
    if (standing.has(name) && !removed.has(name.slice(65))) continue;
    await fs.rm(path.join(dir, name), { force: true });
    n++;
  }
  if (n > 0) await fsyncDir(dir);
  return n;
}
