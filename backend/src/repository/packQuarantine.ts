/**
 * Quarantine of format 2 (FORMAT.md §20): a blob copy verify found corrupt cannot be moved out
 * of its pack (the pack is one immutable file), so it is recorded instead, as the file
 * `quarantine/<blob id hex>.<pack name>`. Every process skips a recorded copy (RepoIndex loads
 * the records on each refresh): readers do not read it, writers do not deduplicate against it —
 * so the next backup that reads the same content stores a good copy in a new pack — and the
 * garbage collection counts it as dead. The collection removes the records of the packs it
 * removes.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import { QUARANTINE_DIR } from './layout';

const RECORD = /^([0-9a-f]{64})\.([0-9a-f]{64})$/;

/** The key of a blob copy: `<id hex>.<pack>`, as its record is named. */
export function quarantineKey(idHex: string, pack: string): string {
  return `${idHex}.${pack}`;
}

/** Keys of every recorded copy (format 1's quarantined chunk files, named differently, are not
 *  listed). */
export async function readPackQuarantine(root: string): Promise<Set<string>> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(root, QUARANTINE_DIR));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return new Set();
    throw new AppError('REPO_IO_ERROR', `listing ${path.join(root, QUARANTINE_DIR)} failed`, { cause: err });
  }
  return new Set(names.filter((n) => RECORD.test(n)));
}

/** What a record holds (for the operator; only its name is read by the programs). */
export interface QuarantineRecord {
  blob: string;
  pack: string;
  quarantinedAt: string;
  reason: string;
}

/** Records a corrupt copy (atomically, durably). Returns the record's name, or null if it was
 *  recorded already. */
export async function quarantineBlob(root: string, idHex: string, pack: string, reason: string): Promise<string | null> {
  const name = quarantineKey(idHex, pack);
  if (!RECORD.test(name)) throw new AppError('INVALID_ARGUMENT', `quarantine: ${JSON.stringify(name)} does not name a blob and a pack`);
  const dir = path.join(root, QUARANTINE_DIR);
  const file = path.join(dir, name);
  try {
    await fs.access(file);
    return null;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new AppError('REPO_IO_ERROR', `quarantine: looking for ${file} failed`, { cause: err });
  }
  const record: QuarantineRecord = { blob: idHex, pack, quarantinedAt: new Date().toISOString(), reason };
  try {
    await fs.mkdir(dir, { recursive: true });
    await writeFileAtomic(file, Buffer.from(JSON.stringify(record) + '\n'));
  } catch (err) {
    throw new AppError('REPO_IO_ERROR', `quarantine: recording blob ${idHex} of pack ${pack} failed`, { cause: err });
  }
  return name;
}

/** Removes the records of packs that are gone (the garbage collection removed them). */
export async function dropQuarantineOfPacks(root: string, packs: ReadonlySet<string>): Promise<number> {
  if (packs.size === 0) return 0;
  const dir = path.join(root, QUARANTINE_DIR);
  let n = 0;
  for (const name of await readPackQuarantine(root)) {
    if (!packs.has(name.slice(65))) continue;
    await fs.rm(path.join(dir, name), { force: true });
    n++;
  }
  if (n > 0) await fsyncDir(dir);
  return n;
}
