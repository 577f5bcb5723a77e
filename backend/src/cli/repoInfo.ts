/**
 * `repo info`: what an operator checks first about a repository — where it is (a directory, or
 * an object store with its local cache and the mode this command opened it in), its format,
 * chunk and pack size, encryption. Nothing here touches the store.
 */
import type { Repository } from '../repository';

export interface RepoInfo {
  repo: string;
  directory: string;
  remote: { location: string; mode: 'writer' | 'reader' } | null;
  format: number;
  chunkSize: number;
  packSize: number | null;
  encrypted: boolean;
}

export function repoInfo(r: Repository): RepoInfo {
  const remote = remoteOf(r);
  return {
    repo: remote?.location ?? r.dir,
    directory: r.dir,
    remote,
    format: r.formatVersion,
    chunkSize: r.chunkSize,
    packSize: r.config.packSize ?? null,
    encrypted: r.encrypted,
  };
}

/** Repository.remote (S3-DESIGN.md: null for a directory), read so that this builds before the
 *  object-store branch adds the member. */
export function remoteOf(r: Repository): RepoInfo['remote'] {
  return (r as { remote?: RepoInfo['remote'] }).remote ?? null;
}
