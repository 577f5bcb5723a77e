import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { writeFileAtomic, isErrno } from './atomicFile';
import { CONFIG_FILE } from './layout';
import { DEFAULT_REPO_VERSION, REPO_VERSIONS, type RepoVersion } from './model';

export { DEFAULT_REPO_VERSION, REPO_VERSIONS, type RepoVersion } from './model';
export const REPO_FORMAT = 'olvm-backup-repository';
/** Format 2: packs are sealed when they reach this size (FORMAT.md §17). */
export const DEFAULT_PACK_SIZE = 32 << 20;
export const MIN_PACK_SIZE = 1 << 20;
export const MAX_PACK_SIZE = 512 << 20;
/** Format 2: chunk ids per index tree node (FORMAT.md §19): 8 KiB nodes. */
export const DEFAULT_TREE_FANOUT = 256;
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/** Format 2: 256 KiB chunks keep the daily growth of small scattered writes near what 64 KiB
 *  granules store (measured: test/bench/dailyBench.ts) at the same full-backup speed, now that a
 *  chunk costs no file of its own. */
export const DEFAULT_CHUNK_SIZE_V2 = 256 << 10;
export const MIN_CHUNK_SIZE = 256 << 10;
export const MAX_CHUNK_SIZE = 4 << 20;
/** zstd level 3 (zstd's own default): on incompressible data it is as fast as level 1 (zstd
 *  detects raw blocks, ~2 GB/s per core here), on typical disk content it gives ~10 % smaller
 *  chunks than level 1 at ~210 MB/s per core, enough for the 2-core throughput target. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** The repository's `config.json` (FORMAT.md §2). */
export interface RepoConfig {
  format: typeof REPO_FORMAT;
  version: RepoVersion;
  /** Random id, so that a catalog can tell two repositories apart. */
  repositoryId: string;
  chunkSize: number;
  hash: 'sha256';
  compression: 'zstd';
  /** Level writers use; readers do not need it. */
  zstdLevel: number;
  createdAt: string;
  /** Format 2 only: target size of a pack file in bytes. */
  packSize?: number;
  /** Format 2 only: chunk ids per index tree node. */
  treeFanout?: number;
  /** Format 2 only: null for a plain repository (FORMAT.md §21). */
  encryption?: RepoEncryption | null;
  /** Present while a format-1 repository is being upgraded in place (FORMAT.md §22): only
   *  `repo upgrade` opens it then. */
  upgrade?: UpgradeMarker;
}

/** config.json's `upgrade` marker (FORMAT.md §22). */
export interface UpgradeMarker {
  from: 1;
  startedAt: string;
  /** Who started it (the audit log's actor). */
  actor: string;
}

/** config.json's `encryption` block: what a reader needs to know before it asks for a key. */
export interface RepoEncryption {
  algorithm: 'aes-256-gcm';
  idHash: 'hmac-sha256';
  kdf: 'scrypt';
  /** base64 HMAC-SHA256(idKey, "olvm-backup-key-check:" + repositoryId): tells a wrong key from damage. */
  keyCheck: string;
}

export interface NewConfigOptions {
  chunkSize?: number;
  version?: RepoVersion;
  packSize?: number;
  encryption?: RepoEncryption | null;
}

export function isValidChunkSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= MIN_CHUNK_SIZE && n <= MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}

export function isValidPackSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= MIN_PACK_SIZE && n <= MAX_PACK_SIZE;
}

export function newConfig(opts: NewConfigOptions = {}): RepoConfig {
  const version = opts.version ?? DEFAULT_REPO_VERSION;
  const chunkSize = opts.chunkSize ?? (version === 2 ? DEFAULT_CHUNK_SIZE_V2 : DEFAULT_CHUNK_SIZE);
  if (!(REPO_VERSIONS as readonly number[]).includes(version)) throw new AppError('INVALID_ARGUMENT', `repository format ${String(version)} is not one of ${REPO_VERSIONS.join(', ')}`);
  if (version === 1 && (opts.encryption || opts.packSize !== undefined)) {
    throw new AppError('INVALID_ARGUMENT', 'encryption and pack sizes need repository format 2');
  }
  const packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
  if (version === 2 && !isValidPackSize(packSize)) {
    throw new AppError('INVALID_ARGUMENT', `pack size ${String(packSize)} is outside ${MIN_PACK_SIZE}..${MAX_PACK_SIZE} bytes`);
  }
  if (!isValidChunkSize(chunkSize)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `chunk size ${String(chunkSize)} is not a power of two between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`,
    );
  }
  const base: RepoConfig = {
    format: REPO_FORMAT,
    version,
    repositoryId: randomUUID(),
    chunkSize,
    hash: 'sha256',
    compression: 'zstd',
    zstdLevel: DEFAULT_ZSTD_LEVEL,
    createdAt: new Date().toISOString(),
  };
  if (version === 1) return base;
  return { ...base, packSize, treeFanout: DEFAULT_TREE_FANOUT, encryption: opts.encryption ?? null };
}

export async function writeConfig(dir: string, config: RepoConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, CONFIG_FILE), Buffer.from(JSON.stringify(config, null, 2) + '\n'));
}

/** REPO_NOT_FOUND when there is no directory or no config in it; REPO_INVALID when the config
 *  is not one this code can use, or when the repository is being upgraded (FORMAT.md §22) and
 *  the caller is not the upgrade (`upgrading`). */
export async function readConfig(dir: string, opts: { upgrading?: boolean } = {}): Promise<RepoConfig> {
  const file = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
      throw new AppError('REPO_NOT_FOUND', `no repository at ${dir} (missing ${CONFIG_FILE})`, { cause: err });
    }
    throw new AppError('REPO_IO_ERROR', `reading ${file} failed`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AppError('REPO_INVALID', `repository config ${file} is not valid json`, { cause: err });
  }
  const config = validateConfig(raw, file);
  if (config.upgrade && opts.upgrading !== true) throw upgradingError(dir, config.upgrade);
  return config;
}

/** What every program but `repo upgrade` says of a half-upgraded repository. */
export function upgradingError(dir: string, marker: UpgradeMarker): AppError {
  return new AppError(
    'REPO_INVALID',
    `repository ${dir} is being upgraded to format 2 (started ${marker.startedAt} by ${marker.actor}); run \`olvm-backup repo upgrade --repo ${dir}\` to finish`,
    { details: { upgrade: marker } },
  );
}

function validateConfig(raw: unknown, file: string): RepoConfig {
  const bad = (why: string): AppError => new AppError('REPO_INVALID', `repository config ${file}: ${why}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a json object');
  const c = raw as Record<string, unknown>;
  if (c['format'] !== REPO_FORMAT) throw bad(`format is ${JSON.stringify(c['format'])}, expected "${REPO_FORMAT}"`);
  const version = c['version'];
  if (version !== 1 && version !== 2) throw bad(`unsupported version ${JSON.stringify(version)} (this program reads ${REPO_VERSIONS.join(' and ')})`);
  if (!isValidChunkSize(c['chunkSize'])) throw bad(`invalid chunkSize ${JSON.stringify(c['chunkSize'])}`);
  if (c['hash'] !== 'sha256') throw bad(`unsupported hash ${JSON.stringify(c['hash'])}`);
  if (c['compression'] !== 'zstd') throw bad(`unsupported compression ${JSON.stringify(c['compression'])}`);
  const level = c['zstdLevel'] ?? DEFAULT_ZSTD_LEVEL;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < -7 || level > 22) throw bad(`invalid zstdLevel ${JSON.stringify(level)}`);
  if (typeof c['createdAt'] !== 'string') throw bad('createdAt missing');
  const base: RepoConfig = {
    format: REPO_FORMAT,
    version,
    repositoryId: typeof c['repositoryId'] === 'string' ? c['repositoryId'] : '',
    chunkSize: c['chunkSize'],
    hash: 'sha256',
    compression: 'zstd',
    zstdLevel: level,
    createdAt: c['createdAt'],
  };
  if (version === 1) return base;
  if (!isValidPackSize(c['packSize'])) throw bad(`invalid packSize ${JSON.stringify(c['packSize'])}`);
  const fanout = c['treeFanout'];
  if (typeof fanout !== 'number' || !Number.isInteger(fanout) || fanout < 16 || fanout > 65536) throw bad(`invalid treeFanout ${JSON.stringify(fanout)}`);
  if (typeof c['repositoryId'] !== 'string' || c['repositoryId'] === '') throw bad('repositoryId missing');
  const v2: RepoConfig = { ...base, packSize: c['packSize'], treeFanout: fanout, encryption: validateEncryption(c['encryption'], bad) };
  const upgrade = c['upgrade'];
  if (upgrade === undefined || upgrade === null) return v2;
  const u = upgrade as Record<string, unknown>;
  if (typeof upgrade !== 'object' || u['from'] !== 1 || typeof u['startedAt'] !== 'string' || typeof u['actor'] !== 'string') throw bad('invalid upgrade marker');
  return { ...v2, upgrade: { from: 1, startedAt: u['startedAt'], actor: u['actor'] } };
}

function validateEncryption(raw: unknown, bad: (why: string) => AppError): RepoEncryption | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('encryption is not an object');
  const e = raw as Record<string, unknown>;
  if (e['algorithm'] !== 'aes-256-gcm') throw bad(`unsupported encryption ${JSON.stringify(e['algorithm'])}`);
  if (e['idHash'] !== 'hmac-sha256') throw bad(`unsupported id hash ${JSON.stringify(e['idHash'])}`);
  if (e['kdf'] !== 'scrypt') throw bad(`unsupported key derivation ${JSON.stringify(e['kdf'])}`);
  if (typeof e['keyCheck'] !== 'string' || e['keyCheck'] === '') throw bad('encryption.keyCheck missing');
  return { algorithm: 'aes-256-gcm', idHash: 'hmac-sha256', kdf: 'scrypt', keyCheck: e['keyCheck'] };
}
