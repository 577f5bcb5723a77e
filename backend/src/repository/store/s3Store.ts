import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'crypto';
import { AppError } from '../../errors';
import { isSafeKey, type BucketLock, type DeleteResult, type HeadInfo, type ObjectInfo, type ObjectStore, type PutOptions, type PutResult, type Retention } from './objectStore';
import { checkBucket, readBucketLock } from './s3Bucket';
import { DEFAULT_TUNING, makeS3Client, type S3ClientTuning } from './s3Client';
import type { S3Config } from './s3Config';
import { downloadRanges, readRange } from './s3Download';
import { failureCode, isAccessDenied, isNotFound } from './s3Errors';
import { sourceOf, uploadMultipart, type MultipartHooks } from './s3Multipart';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './s3Retry';
import { abortUploadsBefore, latestRetention, listKeyVersions, readVersionRetention, type KeyVersion } from './s3Versions';

/**
 * The ObjectStore contract on an S3-compatible store (Ceph RGW 16 is the one tested; AWS S3,
 * MinIO and OCI speak the same API). Every call goes through withRetry (bounded backoff on
 * throttling, 5xx and network failures) and every failure becomes a STORE_* AppError with the
 * store's words. Object Lock: retention is sent with PutObject, and re-applied after
 * CompleteMultipartUpload because Ceph 16 ignores it on CreateMultipartUpload; deletes remove
 * every version and report a version the store keeps under retention as `locked`.
 */

export interface S3StoreOptions {
  /** Refuse to open on a bucket without Object Lock (default true, protection.requireObjectLock);
   *  with false, retention asked for on such a bucket is dropped. */
  requireObjectLock?: boolean;
  /** Delete/shorten GOVERNANCE-locked versions (BypassGovernanceRetention): the operator CLI's
   *  `points unlock` only. COMPLIANCE versions stay refused whatever this says. */
  bypassGovernance?: boolean;
  retry?: Partial<RetryPolicy>;
  tuning?: Partial<S3ClientTuning>;
  /** Objects larger than this go multipart (default 16 MiB). */
  multipartThreshold?: number;
  /** Part size and ranged-GET size (default 8 MiB). */
  partSize?: number;
  /** Parts / ranges in flight (default 4). */
  inFlight?: number;
  /** Keys per ListObjectsV2 / ListObjectVersions page (default 1000; tests page with less). */
  listPageSize?: number;
  /** Test hooks (never set in production). */
  testHooks?: S3TestHooks;
}

export type S3TestHooks = MultipartHooks;

const MiB = 1 << 20;

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly retry: RetryPolicy;
  private readonly requireLock: boolean;
  private readonly bypass: boolean;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly inFlight: number;
  private readonly pageSize: number;
  private readonly hooks: S3TestHooks;
  private lock: Promise<BucketLock> | undefined;
  private versioned: Promise<boolean> | undefined;
  private bucketSeen = false;

  constructor(cfg: S3Config, opts: S3StoreOptions = {}) {
    this.bucket = cfg.bucket;
    this.prefix = cfg.prefix.replace(/^\/+|\/+$/g, '');
    this.location = `s3://${cfg.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.client = makeS3Client(cfg, { ...DEFAULT_TUNING, ...opts.tuning });
    this.requireLock = opts.requireObjectLock !== false;
    this.bypass = opts.bypassGovernance === true;
    this.threshold = opts.multipartThreshold ?? 16 * MiB;
    this.partSize = opts.partSize ?? 8 * MiB;
    this.inFlight = opts.inFlight ?? 4;
    this.pageSize = opts.listPageSize ?? 1000;
    this.hooks = opts.testHooks ?? {};
  }

  /** Opens the store: the bucket must exist, and have Object Lock when that is required. */
  static async open(cfg: S3Config, opts: S3StoreOptions = {}): Promise<S3Store> {
    const store = new S3Store(cfg, opts);
    try {
      await store.ensureBucket();
      if (store.requireLock && !(await store.bucketLock()).enabled) {
        throw new AppError('STORE_NO_OBJECT_LOCK', `${store.location}: the bucket has no Object Lock, and the repository requires it (protection.requireObjectLock); create the bucket with Object Lock (repo init --object-lock) or turn the requirement off`);
      }
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  async put(key: string, body: Buffer | { file: string }, opts: PutOptions = {}): Promise<PutResult> {
    const full = this.full(key);
    const what = `PUT ${key} to ${this.location}`;
    const retention = await this.retentionFor(opts.retention, key);
    const src = await sourceOf(body, what);
    const versioned = opts.ifAbsent ? await this.isVersioned() : false;
    // ifAbsent: If-None-Match: * where the store honours it (Ceph 16: unversioned buckets, single
    // PUT → 412). Ceph 16 ignores it on a versioned bucket (every Object Lock bucket), and
    // multipart has no such header there: a HEAD comes first, and on a versioned bucket the
    // version history decides afterwards (wonCreate). Unversioned + multipart keeps a race
    // between the HEAD and the upload: harmless for the single writer, which alone creates.
    if (opts.ifAbsent && (versioned || src.size > this.threshold) && (await this.head(key)) !== null) return { created: false };
    let versionId: string | undefined;
    if (src.size > this.threshold) {
      const done = await uploadMultipart(
        { client: this.client, bucket: this.bucket, key: full, what, partSize: this.partSize, inFlight: this.inFlight, retry: this.retry, contentType: opts.contentType, hooks: this.hooks },
        src,
      );
      // Complete's answer lacks the ETag on Ceph 16 and may lack the version: HEAD tells both
      const info = await this.head(key);
      if (!info || info.size !== src.size) {
        throw new AppError('STORE_CORRUPT', `${what}: after the multipart upload the store holds ${info ? `${info.size} bytes` : 'nothing'}, expected ${src.size}`);
      }
      versionId = done.versionId ?? info.versionId;
      if (retention) await this.setRetention(key, full, versionId, retention, undefined);
    } else {
      const data = await src.read(0, src.size);
      let md5 = createHash('md5').update(data).digest('base64');
      if (this.hooks.contentMd5) md5 = this.hooks.contentMd5(md5);
      try {
        const out = await withRetry(what, this.retry, (signal) =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: full,
              Body: data,
              ContentLength: data.length,
              ContentMD5: md5,
              ContentType: opts.contentType,
              ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
              ...(retention ? { ObjectLockMode: retention.mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE', ObjectLockRetainUntilDate: retention.until } : {}),
            }),
            { abortSignal: signal },
          ),
        );
        versionId = out.VersionId;
      } catch (err) {
        if (opts.ifAbsent && failureCode(err) === 'PreconditionFailed') return { created: false };
        throw err;
      }
    }
    if (opts.ifAbsent && versioned && !(await this.wonCreate(key, full, versionId))) return { created: false };
    return { created: true, ...(versionId && versionId !== 'null' ? { versionId } : {}) };
  }

  async get(key: string): Promise<Buffer> {
    return this.found(key, readRange(this.rangeRead(key, `GET ${key} from ${this.location}`), 0, undefined));
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new AppError('INVALID_ARGUMENT', `invalid byte range: offset ${offset}, length ${length}`);
    }
    if (length === 0) {
      if ((await this.head(key)) === null) throw new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}`);
      return Buffer.alloc(0);
    }
    return this.found(key, readRange(this.rangeRead(key, `GET ${key} bytes ${offset}+${length} from ${this.location}`), offset, length));
  }

  async download(key: string, file: string): Promise<number> {
    const info = await this.head(key);
    if (!info) throw new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}`);
    const r = this.rangeRead(key, `GET ${key} from ${this.location} into ${file}`);
    if (info.versionId) r.versionId = info.versionId;
    else if (info.etag) r.etag = info.etag;
    return this.found(key, downloadRanges(r, info.size, file, this.partSize, this.inFlight));
  }

  async head(key: string): Promise<(HeadInfo & { etag?: string }) | null> {
    const full = this.full(key);
    let out;
    try {
      out = await withRetry(`HEAD ${key} in ${this.location}`, this.retry, (signal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full }), { abortSignal: signal }),
      );
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof AppError && err.code === 'STORE_NOT_FOUND')) throw err;
      // a HEAD 404 carries no code: a missing bucket looks like a missing key
      await this.ensureBucket();
      return null;
    }
    const versionId = out.VersionId && out.VersionId !== 'null' ? out.VersionId : undefined;
    const info: HeadInfo & { etag?: string } = { key, size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0) };
    if (versionId) info.versionId = versionId;
    if (out.ETag) info.etag = out.ETag;
    if (out.ObjectLockMode && out.ObjectLockRetainUntilDate) {
      info.retention = { mode: out.ObjectLockMode === 'COMPLIANCE' ? 'compliance' : 'governance', until: out.ObjectLockRetainUntilDate };
    } else if (versionId && (await this.bucketLock()).enabled) {
      const r = await this.versionRetention(full, versionId);
      if (r) info.retention = r;
    }
    return info;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const cut = this.prefix ? this.prefix.length + 1 : 0;
    let token: string | undefined;
    do {
      const page = await withRetry(`listing ${prefix || '(all)'} in ${this.location}`, this.retry, (signal) =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.fullPrefix(prefix), MaxKeys: this.pageSize, ContinuationToken: token }),
          { abortSignal: signal },
        ),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(cut), size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async lockedUntil(key: string): Promise<Retention | null> {
    const full = this.full(key);
    if (!(await this.bucketLock()).enabled) return null;
    const versions = await listKeyVersions(this.client, this.bucket, full, this.pageSize, this.retry, `listing the versions of ${key} in ${this.location}`);
    return latestRetention(this.client, this.bucket, full, versions, this.bypass, this.retry, this.location);
  }

  /** Refused when any version is under retention: then nothing is deleted (deleting the others
   *  would remove e.g. an unlocked newer manifest over a locked one, FORMAT.md §24). */
  async delete(key: string): Promise<DeleteResult> {
    const full = this.full(key);
    const versions = await listKeyVersions(this.client, this.bucket, full, this.pageSize, this.retry, `listing the versions of ${key} in ${this.location}`);
    if (versions.length === 0) return { state: 'absent' };
    if ((await this.bucketLock()).enabled) {
      const held = await latestRetention(this.client, this.bucket, full, versions, this.bypass, this.retry, this.location);
      if (held) return { state: 'locked', until: held.until, mode: held.mode };
    }
    let locked = false;
    let until: Retention | undefined;
    // a refusal now is a retention set since the check or judged by the store's clock
    for (const v of versions) {
      const refusal = await this.deleteVersion(key, full, v);
      if (refusal) {
        locked = true;
        if (!until || refusal.until > until.until) until = refusal;
      }
    }
    return locked ? { state: 'locked', ...(until ? { until: until.until, mode: until.mode } : {}) } : { state: 'deleted' };
  }

  async extendRetention(key: string, retention: Retention): Promise<void> {
    const full = this.full(key);
    const want = await this.retentionFor(retention, key);
    const info = await this.head(key);
    if (!info) throw new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}`);
    if (!want) return;
    await this.setRetention(key, full, info.versionId, want, info.retention);
  }

  bucketLock(): Promise<BucketLock> {
    this.lock ??= readBucketLock(this.client, this.bucket, this.retry, this.location).catch((err: unknown) => {
      this.lock = undefined;
      throw err;
    });
    return this.lock;
  }

  async abortStaleUploads(olderThan: Date): Promise<number> {
    return abortUploadsBefore(this.client, this.bucket, this.prefix ? `${this.prefix}/` : '', olderThan, this.retry, this.location);
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  /** Sets `want` on one version unless it already has an equal or later date (never shortens);
   *  COMPLIANCE stays COMPLIANCE (the store refuses a downgrade). */
  private async setRetention(key: string, full: string, versionId: string | undefined, want: Retention, current: Retention | undefined): Promise<void> {
    const now = current ?? (versionId ? await this.versionRetention(full, versionId) : undefined);
    if (now && now.until.getTime() >= want.until.getTime()) return;
    const mode = now?.mode === 'compliance' ? 'COMPLIANCE' : want.mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE';
    await withRetry(`setting the retention of ${key} in ${this.location} to ${want.until.toISOString()}`, this.retry, (signal) =>
      this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key: full,
          VersionId: versionId,
          Retention: { Mode: mode, RetainUntilDate: want.until },
          // a bucket default of GOVERNANCE with a later date needs it; otherwise harmless
          ...(this.bypass ? { BypassGovernanceRetention: true } : {}),
        }),
        { abortSignal: signal },
      ),
    );
  }

  private versionRetention(full: string, versionId: string | undefined): Promise<Retention | undefined> {
    return readVersionRetention(this.client, this.bucket, full, versionId, this.retry, this.location);
  }

  /** Deletes one version; returns the refusal when Object Lock keeps it (never throws for that). */
  private async deleteVersion(key: string, full: string, v: KeyVersion): Promise<Retention | undefined> {
    try {
      await withRetry(`deleting ${key} (version ${v.versionId}) in ${this.location}`, this.retry, (signal) =>
        this.client.send(
          new DeleteObjectCommand({ Bucket: this.bucket, Key: full, VersionId: v.versionId, ...(this.bypass ? { BypassGovernanceRetention: true } : {}) }),
          { abortSignal: signal },
        ),
      );
      return undefined;
    } catch (err) {
      if (isNotFound(err) || (err instanceof AppError && err.code === 'STORE_NOT_FOUND')) return undefined;
      if (!(err instanceof AppError && err.code === 'STORE_ACCESS_DENIED') && !isAccessDenied(err)) throw err;
      if (v.deleteMarker) throw err;
      // AccessDenied is also what missing rights look like: "locked" only when a retention runs
      // (five minutes of slack: the store judges expiry by its own clock)
      const r = await this.versionRetention(full, v.versionId);
      if (!r || r.until.getTime() < Date.now() - 5 * 60_000) throw err;
      return r;
    }
  }

  /**
   * ifAbsent on a versioned bucket: after our PUT, the version right below ours must be a delete
   * marker or nothing. Otherwise someone created the key first: our version is removed again and
   * the answer is "not created". Two racing creators may both back off; never both win.
   */
  private async wonCreate(key: string, full: string, versionId: string | undefined): Promise<boolean> {
    if (!versionId || versionId === 'null') return true;
    const versions = await listKeyVersions(this.client, this.bucket, full, this.pageSize, this.retry, `checking the creation of ${key} in ${this.location}`);
    const mine = versions.findIndex((v) => v.versionId === versionId);
    const below = mine >= 0 ? versions[mine + 1] : undefined;
    if (!below || below.deleteMarker) return true;
    await this.deleteVersion(key, full, { versionId, deleteMarker: false });
    return false;
  }

  private async retentionFor(r: Retention | undefined, key: string): Promise<Retention | undefined> {
    if (!r) return undefined;
    if ((await this.bucketLock()).enabled) return r;
    if (this.requireLock) throw new AppError('STORE_NO_OBJECT_LOCK', `${this.location}: the bucket has no Object Lock, so ${key} cannot get a retention`);
    return undefined;
  }

  private isVersioned(): Promise<boolean> {
    this.versioned ??= withRetry(`reading the versioning of ${this.location}`, this.retry, (signal) =>
      this.client.send(new GetBucketVersioningCommand({ Bucket: this.bucket }), { abortSignal: signal }),
    ).then(
      (out) => out.Status === 'Enabled' || out.Status === 'Suspended',
      (err: unknown) => {
        this.versioned = undefined;
        throw err;
      },
    );
    return this.versioned;
  }

  private async ensureBucket(): Promise<void> {
    if (this.bucketSeen) return;
    await checkBucket(this.client, this.bucket, this.retry, this.location);
    this.bucketSeen = true;
  }

  /** A GET's NoSuchKey → STORE_NOT_FOUND naming the key (the mapping keeps the store's words). */
  private async found<T>(key: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof AppError && err.code === 'STORE_NOT_FOUND') throw new AppError('STORE_NOT_FOUND', `${key} is not in ${this.location}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  private rangeRead(key: string, what: string): { client: S3Client; bucket: string; key: string; what: string; retry: RetryPolicy; versionId?: string; etag?: string } {
    return { client: this.client, bucket: this.bucket, key: this.full(key), what, retry: this.retry };
  }

  private full(key: string): string {
    if (!isSafeKey(key)) throw new AppError('INVALID_ARGUMENT', `not a valid object key: ${JSON.stringify(key)}`);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private fullPrefix(prefix: string): string {
    if (prefix.startsWith('/') || prefix.split('/').some((s) => s === '.' || s === '..')) {
      throw new AppError('INVALID_ARGUMENT', `not a valid key prefix: ${JSON.stringify(prefix)}`);
    }
    return this.prefix ? `${this.prefix}/${prefix}` : prefix;
  }
}
