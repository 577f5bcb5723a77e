/**
 * `repo info`: what an operator checks first about a repository — where it is (a directory, or
 * an object store with its local cache and the mode this command opened it in), its format,
 * chunk and pack size, encryption; on object storage the bucket's Object Lock and who holds the
 * writer lease (repository/store/remoteStatus.ts).
 */
import type { RemoteStatus, Repository } from '../repository';

export interface RepoInfo {
  repo: string;
  directory: string;
  remote: { location: string; mode: 'writer' | 'reader' } | null;
  format: number;
  chunkSize: number;
  packSize: number | null;
  encrypted: boolean;
  /** On object storage: the bucket's Object Lock and the writer lease, as the store has them. */
  store?: Omit<RemoteStatus, 'location'>;
}

export function repoInfo(r: Repository, store?: RemoteStatus): RepoInfo {
  const remote = r.remote;
  return {
    repo: remote?.location ?? r.dir,
    directory: r.dir,
    remote,
    format: r.formatVersion,
    chunkSize: r.chunkSize,
    packSize: r.config.packSize ?? null,
    encrypted: r.encrypted,
    ...(store ? { store: { objectLock: store.objectLock, writer: store.writer } } : {}),
  };
}
