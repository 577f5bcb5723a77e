import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import { chunkPath, damagedMarkPath, DAMAGED_DIR, QUARANTINE_DIR } from './layout';
import { isPointId } from './pointId';
import type { DamageMark } from './types';

/** Problems kept in one mark: enough to say what is wrong, bounded for a disk full of damage. */
export const MAX_MARK_PROBLEMS = 100;

export async function readDamageMark(root: string, pointId: string): Promise<DamageMark | null> {
  if (!isPointId(pointId)) return null;
  let text: string;
  try {
    text = await fs.readFile(damagedMarkPath(root, pointId), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `reading the damage mark of point ${pointId} failed`, { cause: err });
  }
  try {
    const m = JSON.parse(text) as DamageMark;
    if (m && m.pointId === pointId) return m;
  } catch {
    // an unreadable mark still marks the point (written atomically, so this is outside damage)
  }
  return { pointId, vmKey: null, markedAt: '', verifiedAt: '', devices: null, problems: [] };
}

/** Every mark, in point id order. */
export async function readDamageMarks(root: string): Promise<DamageMark[]> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(root, DAMAGED_DIR));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw new AppError('REPO_IO_ERROR', `listing damage marks in ${root} failed`, { cause: err });
  }
  const ids = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter(isPointId).sort();
  const out: DamageMark[] = [];
  for (const id of ids) {
    const m = await readDamageMark(root, id);
    if (m) out.push(m);
  }
  return out;
}

export async function writeDamageMark(root: string, mark: DamageMark): Promise<void> {
  await fs.mkdir(path.join(root, DAMAGED_DIR), { recursive: true });
  await writeFileAtomic(damagedMarkPath(root, mark.pointId), Buffer.from(JSON.stringify(mark, null, 2) + '\n'));
}

/** True if there was a mark. */
export async function clearDamageMark(root: string, pointId: string): Promise<boolean> {
  try {
    await fs.unlink(damagedMarkPath(root, pointId));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new AppError('REPO_IO_ERROR', `clearing the damage mark of point ${pointId} failed`, { cause: err });
  }
  await fsyncDir(path.join(root, DAMAGED_DIR));
  return true;
}

/**
 * Moves a corrupt chunk file to `quarantine/<digest>.<stamp>` (kept for inspection, never
 * read). Writers decide "already stored" by the chunk's presence in chunks/, so the next
 * backup that reads the same content stores it again. Null if the chunk file is not there.
 * `from`: the file, when it is not in chunks/ (the upgrade also reads gc-pending/).
 */
export async function quarantineChunk(root: string, hex: string, from: string = chunkPath(root, hex)): Promise<string | null> {
  const qdir = path.join(root, QUARANTINE_DIR);
  await fs.mkdir(qdir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  const name = `${hex}.${stamp}`;
  try {
    await fs.rename(from, path.join(qdir, name));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `moving corrupt chunk ${hex} to quarantine failed`, { cause: err });
  }
  await fsyncDir(path.dirname(from));
  await fsyncDir(qdir);
  return name;
}
