import { AppError, type ErrorCode } from '../../errors';

/**
 * What an S3 failure means for the repository: the SDK's exception (or a socket error) → an
 * AppError with a STORE_* code whose message keeps the store's own words (its error Code and
 * Message, the HTTP status), and whether trying again can help. Codes are the ones AWS
 * documents; Ceph RGW answers with the same names. HEAD requests carry no error body, so their
 * failures arrive as bare HTTP statuses (`NotFound`, `Forbidden`) and are mapped by status.
 */

/** The parts of an SDK or socket error we look at. */
export interface S3Failure {
  code: string;
  message: string;
  status?: number;
}

const ACCESS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'Forbidden', 'AllAccessDisabled', 'AccountProblem']);
const CORRUPT = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch', 'InvalidChecksum', 'IncompleteBody']);
const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchVersion', 'NoSuchUpload']);
/** Throttling and server-side trouble: the request was not applied, another try may work. */
const RETRY_CODES = new Set(['SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequestsException', 'TimeoutError', 'RequestTimeoutException']);
/** Socket-level failures (refused, reset, timed out, DNS hiccup). */
const RETRY_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'ENOTCONN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

export function describeFailure(err: unknown): S3Failure {
  if (typeof err !== 'object' || err === null) return { code: 'Error', message: String(err) };
  const e = err as { name?: unknown; Code?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const named = typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : 'Error';
  // a socket error surfaces as a plain Error with an errno code; prefer the errno then
  const code = errno && (named === 'Error' || named === 'TypeError') ? errno : named;
  let message = typeof e.message === 'string' ? e.message : '';
  if (message === '' || message === 'UnknownError' || message === code) message = '';
  return { code, message, status };
}

/** The store's words in one line: `SlowDown: Please reduce your request rate (HTTP 503)`. */
export function storeWords(f: S3Failure): string {
  return `${f.code}${f.message ? `: ${f.message}` : ''}${f.status ? ` (HTTP ${f.status})` : ''}`;
}

export function isRetryable(err: unknown): boolean {
  if (err instanceof AppError) return false;
  const f = describeFailure(err);
  if (RETRY_CODES.has(f.code) || RETRY_ERRNO.has(f.code)) return true;
  if (f.status !== undefined && f.status >= 500) return true;
  if (f.status === 429) return true;
  // A request that never got a response. The SDK's retry layer may have re-wrapped the socket
  // error into a bare `Error("AWS SDK error wrapper for Error: connect ECONNREFUSED …")` (it does
  // when the error comes from another realm, as under jest), so its words are searched too.
  if (f.status !== undefined) return false;
  return /socket hang up|timed? ?out|Client network socket disconnected/i.test(f.message) || [...RETRY_ERRNO].some((c) => f.message.includes(c));
}

/** The STORE_* code for a failure that retrying did not (or cannot) fix. */
export function storeCodeOf(f: S3Failure): ErrorCode {
  if (f.code === 'RequestTimeTooSkewed') return 'STORE_CLOCK_SKEW';
  if (ACCESS.has(f.code) || f.status === 403) return 'STORE_ACCESS_DENIED';
  if (f.code === 'NoSuchBucket') return 'STORE_BUCKET_MISSING';
  if (CORRUPT.has(f.code)) return 'STORE_CORRUPT';
  if (NOT_FOUND.has(f.code) || f.status === 404) return 'STORE_NOT_FOUND';
  return 'STORE_UNAVAILABLE';
}

/** `what` (e.g. "PUT packs/ab/… to s3://b/p") failed: the AppError with the store's words. */
export function storeError(what: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const f = describeFailure(err);
  return new AppError(storeCodeOf(f), `${what}: the store said ${storeWords(f)}`, { cause: err, details: { storeCode: f.code, httpStatus: f.status } });
}

/** True when the failure is the store saying "no such object/version" (for head-like calls). */
export function isNotFound(err: unknown): boolean {
  const f = describeFailure(err);
  return NOT_FOUND.has(f.code) || (f.status === 404 && f.code !== 'NoSuchBucket');
}

export function isAccessDenied(err: unknown): boolean {
  const f = describeFailure(err);
  return f.code === 'AccessDenied' || (f.status === 403 && f.code === 'Forbidden');
}

/** The store's error code of a failure, also once wrapped into an AppError by storeError. */
export function failureCode(err: unknown): string {
  if (err instanceof AppError) return typeof err.details?.storeCode === 'string' ? err.details.storeCode : '';
  return describeFailure(err).code;
}
