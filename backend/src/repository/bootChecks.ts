/**
 * The stored result of a point's boot check (FORMAT.md §23): `bootchecks/<pointId>.json` and,
 * beside it, the screenshot the check took (`bootchecks/<pointId>.png` or `.ppm`). Written
 * atomically, one record per point (a new check replaces the last one); a reader that does not
 * know the directory loses nothing. The point's deletion removes its record (retention.ts).
 * In an encrypted repository the record holds no guest output (no console lines, no
 * screenshot): those are the guest's data and would otherwise lie there in clear text.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { fsyncDir, isErrno, writeFileAtomic } from './atomicFile';
import { isPointId } from './pointId';

export const BOOTCHECKS_DIR = 'bootchecks';
export const BOOT_CHECK_STATES = ['ok', 'failed', 'timeout'] as const;
export type BootCheckState = (typeof BOOT_CHECK_STATES)[number];

export interface BootCheckRecord {
  pointId: string;
  /** Devices attached, boot disk first. */
  disks: string[];
  state: BootCheckState;
  /** Why, in words that quote no guest output: a sign of life, a boot failure, how QEMU ended,
   *  how long it waited. */
  reason: string;
  /** The console line that matched (the sign of life or the failure), when one did. */
  matchedLine: string | null;
  /** The console's last lines (none in an encrypted repository). */
  consoleTail: string[];
  accel: 'kvm' | 'tcg';
  /** QMP query-pci saw no network controller (PCI class 0x02xx) in the isolated VM. */
  noNetworkDevice: boolean;
  startedAt: string;
  durationMs: number;
  actor: string;
  /** File name beside the record (`<pointId>.png`/`.ppm`), or null. */
  screenshot: string | null;
}

function recordPath(root: string, pointId: string): string {
  return path.join(root, BOOTCHECKS_DIR, `${pointId}.json`);
}

/**
 * Stores `record` (and the screenshot file `screenshotFrom`, copied in) for its point. The
 * screenshot goes first, so a record never names a missing file.
 */
export async function writeBootCheck(root: string, record: BootCheckRecord, screenshotFrom: string | null, encrypted: boolean): Promise<BootCheckRecord> {
  if (!isPointId(record.pointId)) throw new AppError('INVALID_ARGUMENT', `${JSON.stringify(record.pointId)} is not a restore point id`);
  const dir = path.join(root, BOOTCHECKS_DIR);
  await fs.mkdir(dir, { recursive: true });
  let stored: BootCheckRecord = { ...record, screenshot: null };
  if (encrypted) {
    stored = { ...stored, matchedLine: null, consoleTail: [] };
  } else if (screenshotFrom !== null) {
    const name = `${record.pointId}${path.extname(screenshotFrom) === '.png' ? '.png' : '.ppm'}`;
    await removeScreenshots(root, record.pointId);
    await writeFileAtomic(path.join(dir, name), await fs.readFile(screenshotFrom), { syncDir: false });
    stored = { ...stored, screenshot: name };
  }
  await writeFileAtomic(recordPath(root, record.pointId), Buffer.from(JSON.stringify(stored, null, 2) + '\n'));
  return stored;
}

/** The record of a point, or null when it has none. REPO_CORRUPT when it cannot be parsed. */
export async function readBootCheck(root: string, pointId: string): Promise<BootCheckRecord | null> {
  if (!isPointId(pointId)) return null;
  let text: string;
  try {
    text = await fs.readFile(recordPath(root, pointId), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new AppError('REPO_IO_ERROR', `reading the boot check of point ${pointId} failed`, { cause: err });
  }
  try {
    const r = JSON.parse(text) as BootCheckRecord;
    if (r.pointId !== pointId || !BOOT_CHECK_STATES.includes(r.state)) throw new Error('not a boot check record of this point');
    return r;
  } catch (err) {
    throw new AppError('REPO_CORRUPT', `the boot check record of point ${pointId} cannot be read`, { cause: err });
  }
}

/** Path of the stored screenshot of a record, or null. */
export function bootCheckScreenshotPath(root: string, record: BootCheckRecord): string | null {
  return record.screenshot === null ? null : path.join(root, BOOTCHECKS_DIR, path.basename(record.screenshot));
}

/** Removes a point's record and screenshot (its deletion); nothing to remove is fine. */
export async function clearBootCheck(root: string, pointId: string): Promise<void> {
  if (!isPointId(pointId)) return;
  let removed = false;
  try {
    await fs.unlink(recordPath(root, pointId));
    removed = true;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new AppError('REPO_IO_ERROR', `removing the boot check of point ${pointId} failed`, { cause: err });
  }
  removed = (await removeScreenshots(root, pointId)) || removed;
  if (removed) await fsyncDir(path.join(root, BOOTCHECKS_DIR));
}

async function removeScreenshots(root: string, pointId: string): Promise<boolean> {
  let any = false;
  for (const ext of ['.png', '.ppm']) {
    try {
      await fs.unlink(path.join(root, BOOTCHECKS_DIR, `${pointId}${ext}`));
      any = true;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw new AppError('REPO_IO_ERROR', `removing the boot check screenshot of point ${pointId} failed`, { cause: err });
    }
  }
  return any;
}
