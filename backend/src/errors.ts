/**
 * One error type for the whole backend: every failure carries a stable code (layer prefix,
 * SCREAMING_SNAKE), a lower-case message naming what failed on which object, optional details
 * for machines, and the underlying cause (ES2022 `cause`).
 */
export type ErrorCode =
  // qmp
  | 'QMP_CONNECT_FAILED'
  | 'QMP_PROTOCOL_ERROR'
  | 'QMP_COMMAND_FAILED'
  | 'QMP_DISCONNECTED'
  | 'QMP_TIMEOUT'
  | 'QMP_ABORTED'
  | 'QMP_JOB_FAILED'
  // qga (the QEMU guest agent channel)
  | 'QGA_UNAVAILABLE'
  | 'QGA_TIMEOUT'
  | 'QGA_COMMAND_FAILED'
  // nbd
  | 'NBD_CONNECT_FAILED'
  | 'NBD_PROTOCOL_ERROR'
  | 'NBD_SERVER_ERROR'
  | 'NBD_DISCONNECTED'
  | 'NBD_TIMEOUT'
  | 'NBD_ABORTED'
  | 'NBD_UNSUPPORTED'
  /** our nbd server cannot listen where it was asked (socket path or port in use, no permission) */
  | 'NBD_LISTEN_FAILED'
  // hosts (ssh links)
  | 'HOST_UNREACHABLE'
  | 'HOST_KEY_MISMATCH'
  | 'HOST_AUTH_FAILED'
  | 'HOST_DOMAIN_NOT_FOUND'
  | 'HOST_SUDO_REFUSED'
  // repository
  | 'REPO_NOT_FOUND'
  | 'REPO_EXISTS'
  | 'REPO_INVALID'
  | 'REPO_POINT_NOT_FOUND'
  | 'REPO_DISK_NOT_FOUND'
  | 'REPO_CORRUPT'
  | 'REPO_LOCKED'
  | 'REPO_POINT_LOCKED'
  /** a point is being read (restore, download, verify, browse) under a read lease */
  | 'REPO_POINT_LEASED'
  /** a file of the repository belongs to another account and this one cannot do what it must */
  | 'REPO_PERMISSION_DENIED'
  /** the repository belongs to another account than the one running the command (CLI) */
  | 'REPO_OTHER_OWNER'
  | 'REPO_IO_ERROR'
  /** an encrypted repository was opened without a passphrase (or key) */
  | 'REPO_KEY_REQUIRED'
  /** the passphrase (or key) opens none of the repository's keys, or the key is not this repository's */
  | 'REPO_KEY_WRONG'
  /** repo sync: the destination has another point under the source point's id (never overwritten) */
  | 'REPO_SYNC_CONFLICT'
  // object storage (repository/store): the store's own words are kept in the message
  /** the store refused the credentials (wrong, expired) or the operation (AccessDenied) */
  | 'STORE_ACCESS_DENIED'
  /** the bucket does not exist (or the endpoint serves no such bucket) */
  | 'STORE_BUCKET_MISSING'
  /** the request time and the store's clock differ too much (RequestTimeTooSkewed) */
  | 'STORE_CLOCK_SKEW'
  /** the store cannot be reached, or kept answering 5xx/SlowDown after every retry */
  | 'STORE_UNAVAILABLE'
  /** the store reports the object (or what we sent) corrupt: BadDigest, checksum mismatch */
  | 'STORE_CORRUPT'
  /** an object the repository needs is missing from the store */
  | 'STORE_NOT_FOUND'
  /** the object is under Object Lock retention and cannot be deleted or shortened yet */
  | 'STORE_OBJECT_LOCKED'
  /** the bucket has no Object Lock and the configuration requires it (protection.requireObjectLock) */
  | 'STORE_NO_OBJECT_LOCK'
  /** another writer holds the repository prefix (its lease object is fresh) */
  | 'STORE_WRITER_ACTIVE'
  /** a writing command on a repository opened read-only (reader credentials or a reader cache) */
  | 'STORE_READ_ONLY'
  // catalog (the service's SQLite database)
  | 'CATALOG_ERROR'
  // engine (oVirt / OLVM REST API and SSO)
  | 'ENGINE_HTTP_ERROR'
  | 'ENGINE_AUTH_FAILED'
  | 'ENGINE_NOT_FOUND'
  | 'ENGINE_UNREACHABLE'
  | 'ENGINE_TLS_ERROR'
  | 'ENGINE_TIMEOUT'
  | 'ENGINE_ABORTED'
  | 'ENGINE_PROTOCOL_ERROR'
  | 'OVF_INVALID'
  | 'ENGINE_TRANSFER_FAILED'
  /** an engine backup (vms/{id}/backups) went to `failed` or vanished (reference §4.2) */
  | 'ENGINE_BACKUP_FAILED'
  | 'ENGINE_DISK_ILLEGAL'
  // imageio (the image transfer data endpoint: host daemon or engine proxy)
  | 'IMAGEIO_HTTP_ERROR'
  | 'IMAGEIO_UNREACHABLE'
  | 'IMAGEIO_PROTOCOL_ERROR'
  | 'IMAGEIO_TIMEOUT'
  | 'IMAGEIO_ABORTED'
  // backup / restore
  | 'BACKUP_VM_NO_DISKS'
  | 'BACKUP_FAILED'
  | 'BACKUP_ABORTED'
  /** consistency `filesystem` was asked and the guest's filesystems could not be frozen */
  | 'BACKUP_NOT_CONSISTENT'
  | 'RESTORE_FAILED'
  | 'TOOL_FAILED'
  // file-level restore (restore/fileBrowse*.ts)
  /** no such file or folder in a point's filesystem */
  | 'FILE_NOT_FOUND'
  /** a path or file the browser will not serve: `..`, a symlink out of its filesystem, a device, fifo or socket */
  | 'FILE_REFUSED'
  /** the point's data under a file cannot be read: damaged chunks or a corrupt filesystem */
  | 'FILE_UNREADABLE'
  // jobs and the service API
  | 'JOB_NOT_FOUND'
  | 'JOB_CONFLICT'
  | 'JOB_NOT_CANCELLABLE'
  | 'JOB_CANCELLED'
  | 'JOB_INTERRUPTED'
  | 'SERVICE_STOPPING'
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'RESTORE_REFUSED'
  | 'RANGE_NOT_SATISFIABLE'
  | 'TOO_MANY_REQUESTS'
  // setup (olvm-backup setup)
  | 'SETUP_INPUT_MISSING'
  | 'SETUP_CA_UNTRUSTED'
  | 'SETUP_PERMISSION_MISSING'
  | 'SETUP_HOST_KEY_UNTRUSTED'
  // generic
  | 'INVALID_ARGUMENT'
  | 'CONFIG_INVALID'
  | 'TIMEOUT'
  | 'ABORTED';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = opts.details;
  }
}

export function isAppError(err: unknown, code?: ErrorCode): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code);
}

/** "what failed - cause - cause's cause", for one-line reports (CLI, logs). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 6; depth++) {
    if (cur instanceof Error) {
      if (!parts.includes(cur.message)) parts.push(cur.message);
      cur = (cur as Error & { cause?: unknown }).cause;
    } else {
      parts.push(typeof cur === 'string' ? cur : JSON.stringify(cur));
      break;
    }
  }
  return parts.join(' - ');
}
