import { randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError } from '../errors';
import { writeFileAtomic, isErrno } from './atomicFile';
import { CONFIG_FILE } from './layout';

export const REPO_FORMAT = 'olvm-backup-repository';
export const REPO_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 1 << 20;
export const MIN_CHUNK_SIZE = 256 << 10;
export const MAX_CHUNK_SIZE = 4 << 20;
/** zstd level 3 (zstd's own default): on incompressible data it is as fast as level 1 (zstd
 *  detects raw blocks, ~2 GB/s per core here), on typical disk content it gives ~10 % smaller
 *  chunks than level 1 at ~210 MB/s per core, enough for the 2-core throughput target. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** The repository's `config.json` (FORMAT.md §2). */
export interface RepoConfig {
  format: typeof REPO_FORMAT;
  version: typeof REPO_VERSION;
  /** Random id, so that a catalog can tell two repositories apart. */
  repositoryId: string;
  chunkSize: number;
  hash: 'sha256';
  compression: 'zstd';
  /** Level writers use; readers do not need it. */
  zstdLevel: number;
  createdAt: string;
}

export function isValidChunkSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= MIN_CHUNK_SIZE && n <= MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}

export function newConfig(chunkSize: number = DEFAULT_CHUNK_SIZE): RepoConfig {
  if (!isValidChunkSize(chunkSize)) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `chunk size ${String(chunkSize)} is not a power of two between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`,
    );
  }
  return {
    format: REPO_FORMAT,
    version: REPO_VERSION,
    repositoryId: randomUUID(),
    chunkSize,
    hash: 'sha256',
    compression: 'zstd',
    zstdLevel: DEFAULT_ZSTD_LEVEL,
    createdAt: new Date().toISOString(),
  };
}

export async function writeConfig(dir: string, config: RepoConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, CONFIG_FILE), Buffer.from(JSON.stringify(config, null, 2) + '\n'));
}

/** REPO_NOT_FOUND when there is no directory or no config in it; REPO_INVALID when the config
 *  is not one this code can use. */
export async function readConfig(dir: string): Promise<RepoConfig> {
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
  return validateConfig(raw, file);
}

function validateConfig(raw: unknown, file: string): RepoConfig {
  const bad = (why: string): AppError => new AppError('REPO_INVALID', `repository config ${file}: ${why}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a json object');
  const c = raw as Record<string, unknown>;
  if (c['format'] !== REPO_FORMAT) throw bad(`format is ${JSON.stringify(c['format'])}, expected "${REPO_FORMAT}"`);
  if (c['version'] !== REPO_VERSION) throw bad(`unsupported version ${JSON.stringify(c['version'])}`);
  if (!isValidChunkSize(c['chunkSize'])) throw bad(`invalid chunkSize ${JSON.stringify(c['chunkSize'])}`);
  if (c['hash'] !== 'sha256') throw bad(`unsupported hash ${JSON.stringify(c['hash'])}`);
  if (c['compression'] !== 'zstd') throw bad(`unsupported compression ${JSON.stringify(c['compression'])}`);
  const level = c['zstdLevel'] ?? DEFAULT_ZSTD_LEVEL;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < -7 || level > 22) throw bad(`invalid zstdLevel ${JSON.stringify(level)}`);
  if (typeof c['createdAt'] !== 'string') throw bad('createdAt missing');
  return {
    format: REPO_FORMAT,
    version: REPO_VERSION,
    repositoryId: typeof c['repositoryId'] === 'string' ? c['repositoryId'] : '',
    chunkSize: c['chunkSize'],
    hash: 'sha256',
    compression: 'zstd',
    zstdLevel: level,
    createdAt: c['createdAt'],
  };
}
