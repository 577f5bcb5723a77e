import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { isErrno } from './atomicFile';
import { chunkCountFor } from './diskIndex';
import { isHexDigest, MANIFEST_FILE } from './layout';
import { isPointId } from './pointId';
import { sealManifest, unsealManifest } from './manifestSeal';
import type { RepoKey } from './repoKey';
import type { Manifest, ManifestDisk, PointSummary } from './types';

export const MANIFEST_FORMAT = 'olvm-backup-point';
export const MANIFEST_VERSION = 1;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isIsoDate(v: unknown): v is string {
  return typeof v === 'string' && !Number.isNaN(Date.parse(v));
}

/** Plain file name: no directories, no leading dot. */
function isPlainFileName(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,250}$/.test(v);
}

/** Returns what is wrong with `m` as a manifest (empty = valid). */
export function manifestProblems(m: unknown): string[] {
  const out: string[] = [];
  if (!isObj(m)) return ['not a json object'];
  const need = (ok: boolean, what: string): void => {
    if (!ok) out.push(what);
  };
  need(m['format'] === MANIFEST_FORMAT, `format is not "${MANIFEST_FORMAT}"`);
  need(m['version'] === MANIFEST_VERSION, `unsupported version ${JSON.stringify(m['version'])}`);
  need(isPointId(m['pointId']), 'pointId invalid');
  const vm = m['vm'];
  need(
    isObj(vm) && typeof vm['key'] === 'string' && vm['key'] !== '' && typeof vm['name'] === 'string' &&
      (vm['id'] === undefined || typeof vm['id'] === 'string'),
    'vm invalid',
  );
  need(isIsoDate(m['createdAt']), 'createdAt invalid');
  need(isIsoDate(m['completedAt']), 'completedAt invalid');
  need(m['parentPointId'] === null || isPointId(m['parentPointId']), 'parentPointId invalid');
  need(m['consistency'] === 'crash' || m['consistency'] === 'filesystem', 'consistency invalid');
  const chunkSize = m['chunkSize'];
  need(isCount(chunkSize) && chunkSize > 0, 'chunkSize invalid');
  const def = m['vmDefinition'];
  need(def === null || (isObj(def) && typeof def['kind'] === 'string' && typeof def['content'] === 'string'), 'vmDefinition invalid');
  need(m['lockedUntil'] === null || isIsoDate(m['lockedUntil']), 'lockedUntil invalid');
  need(isObj(m['meta']), 'meta invalid');
  const disks = m['disks'];
  if (!Array.isArray(disks) || disks.length === 0) {
    out.push('disks missing or empty');
  } else {
    const devices = new Set<string>();
    const files = new Set<string>();
    disks.forEach((d: unknown, n) => {
      for (const p of diskProblems(d, isCount(chunkSize) && chunkSize > 0 ? chunkSize : 0)) out.push(`disks[${n}]: ${p}`);
      if (isObj(d)) {
        if (devices.has(String(d['device']))) out.push(`disks[${n}]: duplicate device ${String(d['device'])}`);
        devices.add(String(d['device']));
        const file = isObj(d['index']) ? String(d['index']['file']) : '';
        if (files.has(file)) out.push(`disks[${n}]: duplicate index file ${file}`);
        files.add(file);
      }
    });
  }
  return out;
}

function diskProblems(d: unknown, chunkSize: number): string[] {
  if (!isObj(d)) return ['not an object'];
  const out: string[] = [];
  for (const k of ['device', 'node', 'format', 'reason', 'bitmap'] as const) {
    if (typeof d[k] !== 'string') out.push(`${k} invalid`);
  }
  if (d['device'] === '') out.push('device empty');
  if (d['mode'] !== 'full' && d['mode'] !== 'incremental') out.push('mode invalid');
  if (typeof d['bitmapPersistent'] !== 'boolean') out.push('bitmapPersistent invalid');
  for (const k of ['virtualSize', 'bytesRead', 'chunksNew', 'chunksReused', 'chunksZero', 'bytesStored'] as const) {
    if (!isCount(d[k])) out.push(`${k} invalid`);
  }
  if (d['meta'] !== undefined && !isObj(d['meta'])) out.push('meta invalid');
  const idx = d['index'];
  if (!isObj(idx) || !isPlainFileName(idx['file']) || !isHexDigest(idx['sha256']) || !isCount(idx['chunkCount'])) {
    out.push('index invalid');
  } else if (chunkSize > 0 && isCount(d['virtualSize']) && idx['chunkCount'] !== chunkCountFor(d['virtualSize'], chunkSize)) {
    out.push('index.chunkCount does not match virtualSize');
  }
  return out;
}

/** Parses and checks a manifest; a sealed one (encrypted repository) is opened with `key`. */
export function parseManifest(text: string, what: string, key: RepoKey | null = null): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AppError('REPO_CORRUPT', `${what} is not valid json`, { cause: err, details: { kind: 'manifest-corrupt' } });
  }
  if (isObj(raw) && 'sealed' in raw && isObj(raw['vm']) && Array.isArray(raw['disks'])) raw = unsealManifest(raw as unknown as Manifest, key, what);
  const problems = manifestProblems(raw);
  if (problems.length > 0) {
    throw new AppError('REPO_CORRUPT', `${what} is invalid: ${problems.join('; ')}`, { details: { kind: 'manifest-corrupt', problems } });
  }
  return raw as Manifest;
}

/** The manifest as written: its sensitive parts sealed when `key` is given (FORMAT.md §21). */
export function serializeManifest(m: Manifest, key: RepoKey | null = null): Buffer {
  return Buffer.from(JSON.stringify(sealManifest(m, key), null, 2) + '\n', 'utf8');
}

/** Reads `<pointDir>/manifest.json`. REPO_POINT_NOT_FOUND if there is none (a point without a
 *  manifest does not exist); REPO_CORRUPT if it is unreadable or names another point. */
export async function readManifestFile(dir: string, pointId: string, key: RepoKey | null = null): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new AppError('REPO_POINT_NOT_FOUND', `restore point ${pointId} not found`, { cause: err });
    throw new AppError('REPO_IO_ERROR', `reading the manifest of point ${pointId} failed`, { cause: err });
  }
  const m = parseManifest(text, `manifest of point ${pointId}`, key);
  if (m.pointId !== pointId) {
    throw new AppError('REPO_CORRUPT', `manifest of point ${pointId} names point ${m.pointId}`, { details: { kind: 'manifest-corrupt' } });
  }
  return m;
}

export function summarize(m: Manifest): PointSummary {
  return {
    pointId: m.pointId,
    vm: m.vm,
    createdAt: m.createdAt,
    lockedUntil: m.lockedUntil,
    disks: m.disks.map((d: ManifestDisk) => ({
      device: d.device,
      mode: d.mode,
      reason: d.reason,
      virtualSize: d.virtualSize,
      bytesRead: d.bytesRead,
      bytesStored: d.bytesStored,
    })),
  };
}
