/**
 * The object-store interface a repository's remote copy is written through (FORMAT.md §24):
 * whole objects with an integrity checksum, ranged reads, listing by prefix, deletion that
 * reports Object Lock refusals as "locked" instead of failing, retention set at upload and only
 * ever extended. Two implementations: `DirStore` (a plain directory: tests, `repo sync` to a
 * disk) and `S3Store` (any S3-compatible store; Ceph RGW is the one tested). Keys are relative,
 * `/`-separated, never starting with `/` and never containing `..`; a store with a prefix adds it.
 * Every failure is an AppError with a STORE_* code and the store's own words in the message.
 */

/** Object Lock retention of one object. */
export interface Retention {
  mode: 'compliance' | 'governance';
  until: Date;
}

export interface PutOptions {
  /** Set at upload (never later). Ignored (no error) by a store without Object Lock only when the
   *  store was opened with requireObjectLock false; otherwise the store refuses (STORE_NO_OBJECT_LOCK). */
  retention?: Retention;
  /** Create only if absent: resolves `{ created: false }` when the key exists. A store without
   *  conditional writes emulates it with a head first (a documented race, single writer only). */
  ifAbsent?: boolean;
  /** Content type for humans browsing the bucket; the repository does not depend on it. */
  contentType?: string;
}

export interface PutResult {
  created: boolean;
  /** The version the store gave the object (versioned buckets: every Object Lock bucket). */
  versionId?: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

export interface HeadInfo extends ObjectInfo {
  versionId?: string;
  retention?: Retention;
}

/** What delete did: gone (every version), absent (nothing there), or refused by Object Lock
 *  (nothing deleted; `until` = the latest retention date among the key's versions, `mode` its mode). */
export type DeleteResult = { state: 'deleted' } | { state: 'absent' } | { state: 'locked'; until?: Date; mode?: Retention['mode'] };

export interface BucketLock {
  /** Object Lock enabled on the bucket (and so versioning). */
  enabled: boolean;
  /** The bucket's default retention, if one is set. */
  defaultRetention?: { mode: 'compliance' | 'governance'; days: number };
}

export interface ObjectStore {
  readonly kind: 'dir' | 's3';
  /** Where it is, for messages and the audit log: `s3://bucket/prefix` or the directory. Never
   *  contains credentials. */
  readonly location: string;

  /** Uploads `body` (a buffer, or a local file by path: large files go multipart with several
   *  parts in flight). The checksum (Content-MD5 and SHA-256) is always sent; a mismatch is
   *  STORE_CORRUPT. Overwrites unless `ifAbsent`. */
  put(key: string, body: Buffer | { file: string }, opts?: PutOptions): Promise<PutResult>;
  /** The whole object; STORE_NOT_FOUND when absent. */
  get(key: string): Promise<Buffer>;
  /** `length` bytes from `offset` (fewer only at the object's end); STORE_NOT_FOUND when absent. */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /** Downloads the object into a local file (written whole: temp + rename), with several ranged
   *  reads in flight for large objects. Returns its size. */
  download(key: string, file: string): Promise<number>;
  /** Size, date, version and retention of the object, or null when absent. */
  head(key: string): Promise<HeadInfo | null>;
  /** Objects under `prefix` (a key prefix, usually ending in `/`), in key order; delete markers
   *  and older versions are not listed. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes every version of the key — or none: when any version is under retention the result
   *  is `locked` (with the latest date) and every version stays (a newer unlocked version over a
   *  locked one is kept too). Never throws for a lock refusal. */
  delete(key: string): Promise<DeleteResult>;
  /** The retention still running with the latest date among the key's versions, or null (none,
   *  absent, or a store without Object Lock). Lets a caller check several keys before deleting any. */
  lockedUntil(key: string): Promise<Retention | null>;
  /** Lengthens the retention of the key's current version to `until` (never shortens: an
   *  earlier date than the current one is a no-op). STORE_NOT_FOUND when absent. */
  extendRetention(key: string, retention: Retention): Promise<void>;
  /** The bucket's Object Lock state (a directory: `{ enabled: false }`). */
  bucketLock(): Promise<BucketLock>;
  /** Multipart uploads left unfinished (a crash or a network cut mid-upload) that were started
   *  before `olderThan`, aborted so that no orphan parts stay billed; returns how many. */
  abortStaleUploads(olderThan: Date): Promise<number>;
  /** Frees sockets and timers. */
  close(): Promise<void>;
}

/** A key is relative, `/`-separated, with no empty, `.` or `..` segment. */
export function isSafeKey(key: string): boolean {
  if (key === '' || key.startsWith('/') || key.endsWith('/') || key.includes('\\') || key.includes('\0')) return false;
  return key.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}
